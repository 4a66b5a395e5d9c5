"""Helper for the attack tests' package variant (conftest.py's `packages` fixture)."""


def imports_of(packages) -> str:
    """With packages exposed the attack runs after importing them, as a solution using them would."""
    return "".join(f"import {name}\n" for name in packages or [])
