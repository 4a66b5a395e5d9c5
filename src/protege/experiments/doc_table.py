"""Write an experiment's measured table into its Markdown doc without losing the prose people wrote around it.

    write_table(Path("docs/experiments/methods-trec6.md"), table)

The table goes between two marker comments. A doc that has them keeps everything outside; a new doc is the
table alone, inside the markers, so a later run keeps what is written around it; a doc without markers keeps
its text and gets the marked table appended (nothing a person wrote is ever overwritten).
"""
from __future__ import annotations

from pathlib import Path

from protege.store import atomic_write_text

START = "<!-- protege:table:start (written by the experiment command; edit outside the markers) -->"
END = "<!-- protege:table:end -->"


def write_table(path: Path, table: str) -> None:
    block = f"{START}\n{table.rstrip()}\n{END}"
    old = path.read_text() if path.exists() else ""
    if START in old and END in old.split(START, 1)[1]:
        before, rest = old.split(START, 1)
        after = rest.split(END, 1)[1]
        atomic_write_text(path, before + block + after)
    elif old.strip():
        atomic_write_text(path, old.rstrip() + "\n\n" + block + "\n")
    else:
        atomic_write_text(path, block + "\n")
