"""Write an experiment's measured table into its Markdown doc without losing the prose people wrote around it.

    write_table(Path("docs/experiments/methods-trec6.md"), table)
    config_command(argv, __doc__, "protege.lab.experiments.x", lambda config, overrides, command: table)

The table goes between two marker comments. A doc that has them keeps everything outside; a new doc is the
table alone, inside the markers, so a later run keeps what is written around it; a doc without markers keeps
its text and gets the marked table appended (nothing a person wrote is ever overwritten).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from protege.store import write_marked_section

START = "<!-- protege:table:start (written by the experiment command; edit outside the markers) -->"
END = "<!-- protege:table:end -->"


def write_table(path: Path, table: str, name: str | None = None) -> None:
    """`name` gives a doc a second table with markers of its own (protege:table:NAME:start ...)."""
    if name is None:
        write_marked_section(path, START, END, table)
    else:
        write_marked_section(path, START.replace("table:", f"table:{name}:"), END.replace("table:", f"table:{name}:"),
                             table)


def config_command(argv: list[str], doc: str, module: str, make_table: Callable[..., str],
                   options: dict[str, str] | None = None) -> None:
    """The command line of an experiment over one run config: `CONFIG [--out DOC] [--OPTION VALUE] [overrides...]`.
    Prints the table `make_table(config, overrides, command, **options)` returns and writes it into DOC."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", default=None)
    for name, default in (options or {}).items():
        parser.add_argument(f"--{name}", default=default)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    chosen = {name: getattr(args, name) for name in options or {}}
    table = make_table(args.config, args.overrides, f"python -m {module} " + " ".join(argv), **chosen)
    print(table)
    if args.out:
        write_table(Path(args.out), table)
