"""Write an experiment's measured table into its Markdown doc without losing the prose people wrote around it.

    write_table(Path("docs/experiments/methods-trec6.md"), table)
    config_command(argv, __doc__, "protege.lab.experiments.x", lambda config, overrides, command: table)

The table goes between two marker comments. A doc that has them keeps everything outside; a new doc is the
table alone, inside the markers, so a later run keeps what is written around it; a doc without markers keeps
its text and gets the marked table appended (nothing a person wrote is ever overwritten).
"""
from __future__ import annotations

import sys
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
    args, chosen = parse_with_options(parser, argv, options)
    table = make_table(args.config, args.overrides, f"python -m {module} " + " ".join(argv), **chosen)
    print(table)
    if args.out:
        write_table(Path(args.out), table)


def parse_with_options(parser, argv: list[str], options: dict[str, str] | None):
    """`--NAME VALUE` for each option (name to default), then the overrides; the parsed args and the options'
    values by name."""
    for name, default in (options or {}).items():
        parser.add_argument(f"--{name}", default=default)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args(argv)
    return args, {name: getattr(args, name) for name in options or {}}


class Unfinished(Exception):
    """A `--report-only` run met work that is not finished: it reads, it does not resume."""


def run_or_read(pipe, until: str, what: str, run: bool = True):
    """`pipe.run(until)`; with `run=False` only finished stages are reused, and Unfinished names `what` and the
    stages that would run instead."""
    if not run and (todo := pipe.unfinished(until)):
        raise Unfinished(f"{what}: {', '.join(todo)} not finished ({pipe.stages[todo[0]].path})")
    return pipe.run(until)


def phased_command(argv: list[str], doc: str, module: str, data_phase: Callable, arms: Callable, table: Callable,
                   data_record: Callable = lambda data: data, options: dict[str, str] | None = None) -> None:
    """The command line of an experiment in two phases over one run config (the data, then its arms):
    `CONFIG [--out DOC] [--table NAME] [--phase data|all] [--report-only] [--OPTION VALUE] [overrides...]`.
    `data_phase(config, overrides, run, **options)` (run False: read the finished data, raise Unfinished where
    some is not; `options` name to default, the values given), `arms(config,
    overrides, data, run)` (run False: only the arms already evaluated, the rest marked pending) and `table(data,
    results, command)`; the table goes into DOC and the measured values into DOC's .json twin (with --table NAME:
    a second table of DOC, e.g. one per student, and DOC-NAME.json). --report-only runs nothing: with the data
    unfinished it says what is missing and exits 2."""
    import argparse
    import json

    from protege.store import atomic_write_text

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("--out", default=None)
    parser.add_argument("--table", default=None, help="a second table in the same doc (e.g. one per student)")
    parser.add_argument("--phase", choices=["data", "all"], default="all")
    parser.add_argument("--report-only", action="store_true",
                        help="run nothing: the table of the arms evaluated so far (refused while the data is "
                        "unfinished)")
    args, chosen = parse_with_options(parser, argv, options)
    try:
        data = data_phase(args.config, args.overrides, run=not args.report_only, **chosen)
    except Unfinished as e:
        print(f"--report-only reads finished work only, and the data phase is not finished: {e}. Run the command "
              "without --report-only to finish it.", file=sys.stderr)
        raise SystemExit(2) from None
    results = arms(args.config, args.overrides, data, run=not args.report_only) if args.phase == "all" else []
    command = " ".join(a for a in argv if a != "--report-only")  # the command that produces the full table
    text = table(data, results, f"python -m {module} " + command)
    print(text)
    if args.out:
        write_table(Path(args.out), text, name=args.table)
        arm_records = [{k: v for k, v in r.items() if k not in ("cfg", "spec", "eval")}
                       | ({"rows": r["eval"]["rows"]} if "eval" in r else {}) for r in results]
        twin = Path(args.out).with_name(Path(args.out).stem + (f"-{args.table}.json" if args.table else ".json"))
        atomic_write_text(twin, json.dumps(
            {"data": data_record(data), "arms": arm_records}, indent=2, default=str))
