"""Skip markers shared by test modules (a module, not conftest: tests/cooperative has its own conftest, and two
modules named conftest cannot both be imported by name)."""
import pytest


def builtin_data_available() -> bool:
    from protege.tasks.spec import data_dir

    return (data_dir() / "trec" / "TREC_10.label").exists()


requires_data = pytest.mark.skipif(not builtin_data_available(),
                                   reason="built-in data sets not found: set PROTEGE_DATA (see README)")
