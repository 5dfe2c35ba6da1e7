"""Command line: ``python -m sgdtemp {run,params,list,sweep,claims-report} ...``.

Bad input is answered with one sentence on stderr and exit status 2, before any
compute and without creating files.
"""

from __future__ import annotations

import argparse
import ast
import sys
from typing import Any, Sequence

from sgdtemp.params import FIDELITIES, ParameterError

EPILOG = """\
examples:
  python -m sgdtemp list
  python -m sgdtemp params two_minima
  python -m sgdtemp run two_minima --fidelity smoke --out out/two_minima
  python -m sgdtemp run two_minima -p lr 0.05 -p seed 3 --out out/tm
  python -m sgdtemp sweep --help

Parameter values are read as Python literals (3, 0.05, "adam", [0.1, 0.2]);
anything else is taken as a string. The environment variable SGDTEMP_FIDELITY sets
the fidelity of chapters run without one (for example by the book build).
"""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one sentence, no usage dump
        self.exit(2, f"error: {message}.\n")


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m sgdtemp",
        description="Run the chapters of the sgdtemp monograph and its training sweeps.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="execute one chapter; write CHAPTER.ipynb and claims.json")
    run.add_argument("chapter", help="chapter id (see `list`)")
    run.add_argument("--fidelity", default=None,
                     help=f"one of {', '.join(FIDELITIES)} (default: $SGDTEMP_FIDELITY or default)")
    run.add_argument("-p", "--param", nargs=2, action="append", default=[],
                     metavar=("NAME", "VALUE"), help="set a chapter parameter (repeatable)")
    run.add_argument("--out", required=True, help="output folder")
    run.add_argument("--strict", action="store_true",
                     help="exit with status 1 when any claim fails")
    run.add_argument("--no-progress", action="store_true", help="hide the cell progress bar")

    prm = sub.add_parser("params", help="list a chapter's parameters and their presets")
    prm.add_argument("chapter")

    sub.add_parser("list", help="list the chapters")

    # The sweep command owns its own options (sgdtemp.sweep.main parses them).
    sub.add_parser("sweep", help="run a grid of training runs through the results store "
                   "(`sweep --help` for its options)", add_help=False, prefix_chars="\0")
    sub.add_parser("claims-report", help="run every chapter's claims over seeds into "
                   "results/claims_report (only missing runs; `claims-report --help`)",
                   add_help=False, prefix_chars="\0")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:
        from sgdtemp import sweep

        return sweep.main(argv[1:])
    if argv[:1] == ["claims-report"]:
        from sgdtemp import claims_report

        return claims_report.main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            from sgdtemp.chapters import available_chapters

            print("\n".join(available_chapters()))
            return 0
        if args.command == "params":
            from sgdtemp.chapters import parameter_set

            print(parameter_set(args.chapter).describe())
            return 0
        if args.command == "run":
            return _run(args)
        build_parser().print_help()
        return 2
    except ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from sgdtemp.chapters import ChapterFailed, run_chapter
    from sgdtemp.claims import statement_text

    params: dict[str, Any] = {}
    for name, value in args.param:
        if name == "fidelity":
            raise ParameterError("fidelity is set with --fidelity, not -p.")
        if name in params:
            raise ParameterError(f"parameter {name!r} is given twice.")
        params[name] = _literal(value)
    try:
        result = run_chapter(args.chapter, args.out, fidelity=args.fidelity, params=params,
                             progress=not args.no_progress)
    except ChapterFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if result.claims is None:
        print(f"wrote {result.notebook} (this chapter states no claims)")
        return 0
    n, ok = len(result.claims), result.n_holding
    print(f"wrote {result.notebook} and claims.json: {ok} of {n} claims hold")
    for c in result.claims:
        if not c["holds"]:
            print(f"  fails: {c['id']}: {statement_text(c['statement'])}")
    return 1 if (args.strict and ok < n) else 0
