"""Where a result came from: package versions, git commit and date, stored with every results.json."""
from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

from protege.models.precision import describe
from protege.store import now_iso


def git_hash() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def versions() -> dict:
    found = {"python": sys.version.split()[0]}
    for pkg in ("protege", "torch", "transformers", "peft", "trl"):
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            found[pkg] = None
    return found


def provenance() -> dict:
    """Versions, commit and date, and the precision local models computed in (the setting in force)."""
    return {"git": git_hash(), "versions": versions(), "date": now_iso(), "precision": describe()}
