"""Command line: ``python -m sgdtemp {run,params,list,sweep,verify,claims-report} ...``.

Bad input is answered with one sentence on stderr and exit status 2, before any
compute and without creating files. The library modules do not parse command lines:
``sweep`` and ``verify`` are front ends of :mod:`sgdtemp.sweep` and :mod:`sgdtemp.verify`.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any, Sequence

from sgdtemp import sweep
from sgdtemp.params import FIDELITIES, ParameterError
from sgdtemp.store import ResultsStore, config_key
from sgdtemp.verify import describe

EPILOG = """\
examples:
  python -m sgdtemp list
  python -m sgdtemp params two_minima
  python -m sgdtemp run two_minima --fidelity smoke --out out/two_minima
  python -m sgdtemp run two_minima -p lr 0.05 -p seed 3 --out out/tm
  python -m sgdtemp sweep --help
  python -m sgdtemp verify --help

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
                     help="exit with status 1 when any claim fails (an unresolved claim, one "
                          "its test had too little power to decide, does not)")
    run.add_argument("--no-progress", action="store_true", help="hide the cell progress bar")

    prm = sub.add_parser("params", help="list a chapter's parameters and their presets")
    prm.add_argument("chapter")

    sub.add_parser("list", help="list the chapters")

    # These commands own their options (sweep_parser, verify_parser, claims_report.main).
    sub.add_parser("sweep", help="run a grid of training runs through the results store "
                   "(`sweep --help` for its options)", add_help=False, prefix_chars="\0")
    sub.add_parser("verify", help="recompute a sample of the committed runs and compare them "
                   "with their records (`verify --help`)", add_help=False, prefix_chars="\0")
    sub.add_parser("claims-report", help="run every chapter's claims over seeds into "
                   "results/claims_report (only missing runs; `claims-report --help`)",
                   add_help=False, prefix_chars="\0")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:
        return sweep_main(argv[1:])
    if argv[:1] == ["verify"]:
        return verify_main(argv[1:])
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
    from sgdtemp.claims import statement_text, verdict_of, verdict_summary

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
    print(f"wrote {result.notebook} and claims.json: {verdict_summary(result.claims)}")
    for c in result.claims:
        v = verdict_of(c)
        if v != "holds":
            print(f"  {v}: {c['id']}: {statement_text(c['statement'])}")
    return 1 if (args.strict and any(verdict_of(c) == "fails" for c in result.claims)) else 0


# ---------------------------------------------------------------- sweep
SWEEP_EPILOG = """\
examples:
  python -m sgdtemp sweep --preset cifar10_temperature:default --workers 2
  python -m sgdtemp sweep --preset cifar10_temperature:default --dry-run
  python -m sgdtemp sweep --temperatures 0.0005 0.002 --batch-sizes 32 64 128 \\
      --seeds 0 1 --epochs 4 --n-train 5000 --store results/mine
  python -m sgdtemp sweep --lrs 0.05 0.1 --batch-sizes 64 --scheduler tcp://10.0.0.1:8786

The grid is every temperature T crossed with every batch size B (lr = T·B), or with
--lrs every lr crossed with every B, crossed with every seed. Each run is validated
first; a bad value stops the sweep with one sentence before anything is written.
Results already in the store are not recomputed, so an interrupted sweep resumes
where it stopped. Exit status: 0 all runs stored, 1 some runs failed, 2 bad input.
"""


def sweep_parser() -> argparse.ArgumentParser:
    """The options of ``python -m sgdtemp sweep``."""
    p = _Parser(prog="python -m sgdtemp sweep", epilog=SWEEP_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Run a grid of training runs through the results store, "
                            "computing only the runs it lacks.")
    g = p.add_argument_group("what to run")
    g.add_argument("--preset", metavar="CHAPTER:FIDELITY",
                   help="the grid of a chapter at a fidelity, e.g. cifar10_temperature:default; "
                        "the axis options below then override the chapter's values")
    g.add_argument("--temperatures", type=float, nargs="+", metavar="T",
                   help="temperatures T = lr / batch_size (each paired with every batch size)")
    g.add_argument("--lrs", type=float, nargs="+", metavar="LR",
                   help="learning rates (instead of --temperatures; crossed with the batch sizes)")
    g.add_argument("--batch-sizes", type=int, nargs="+", metavar="B", help="batch sizes")
    g.add_argument("--seeds", type=int, nargs="+", metavar="S", help="seeds (default 0)")
    g.add_argument("--epochs", type=int, help="epochs per run")
    g.add_argument("--n-train", type=int, help="training examples used (a fixed subset)")
    g.add_argument("--dataset", help="cifar10 or fashion_mnist")
    g.add_argument("--model", help="small_cnn, mlp or resnet")
    g.add_argument("--momentum", type=float, help="SGD momentum (default 0: plain SGD)")
    g.add_argument("--weight-decay", type=float, help="L2 weight decay")
    g.add_argument("--device", help="cpu, cuda or auto")
    g.add_argument("--curvature", action=argparse.BooleanOptionalAction, default=None,
                   help="measure Hessian trace and top eigenvalue at the end of each run")
    g.add_argument("--data-dir", help="folder holding the data (default $SGDTEMP_DATA); "
                                      "not part of a run's key")
    g.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="with --preset: set any chapter parameter (a Python literal), e.g. "
                        "-p grid reference (repeatable)")
    h = p.add_argument_group("where and how")
    h.add_argument("--store", metavar="DIR",
                   help=f"results folder (default: the preset's, else ${sweep.RESULTS_ENV} or "
                        f"~/.cache/sgdtemp/results)")
    h.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address (tcp://host:port); default: a local process pool")
    h.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default: the CPU count)")
    h.add_argument("--dry-run", action="store_true",
                   help="list the runs missing from the store and exit; compute and write nothing")
    h.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return p


# Option → configuration key, for the axes given one value per run.
_FIXED = {"epochs": "epochs", "n_train": "n_train", "dataset": "dataset", "model": "model",
          "momentum": "momentum", "weight_decay": "weight_decay", "device": "device",
          "curvature": "curvature", "data_dir": "data_dir"}


def _preset_configs(args: argparse.Namespace) -> tuple[list[dict], Path, Any, Any]:
    """The chapter's normalized runs, its store folder, run function and normalizer."""
    import importlib

    from sgdtemp.params import FIDELITIES

    chapter, _, fidelity = args.preset.partition(":")
    try:
        module = importlib.import_module(f"sgdtemp.presets.{chapter}")
    except ImportError:
        module = None
    if module is None or not hasattr(module, "training_configs"):
        raise ParameterError(f"--preset must name a chapter with a training grid, such as "
                             f"cifar10_temperature:default; got {args.preset!r}.")
    if fidelity and fidelity not in FIDELITIES:
        raise ParameterError(f"the fidelity in --preset must be one of {', '.join(FIDELITIES)}; "
                             f"got {fidelity!r}.")
    if args.seeds is not None or args.lrs is not None:
        raise ParameterError("--seeds and --lrs cannot be combined with --preset (the chapter "
                             "sets its own seeds and pairs lr = T·B).")
    overrides = {name: getattr(args, opt) for opt, name in
                 [("temperatures", "temperatures"), ("batch_sizes", "batch_sizes"),
                  ("epochs", "epochs"), ("n_train", "n_train"), ("model", "model"),
                  ("dataset", "dataset"), ("data_dir", "data_dir"), ("store", "store")]
                 if getattr(args, opt) is not None}
    for name, value in args.param:
        if name in overrides or name == "fidelity":
            raise ParameterError(f"-p {name} is given twice (or is set by another option); "
                                 f"give each chapter parameter once.")
        overrides[name] = _literal(value)
    known = set(module.PARAMETERS.names())
    for name in overrides:
        if name not in known:
            raise ParameterError(f"--{name.replace('_', '-')} cannot be used with --preset "
                                 f"{args.preset} (the chapter has no parameter {name!r}).")
    cfg = module.PARAMETERS.resolve(fidelity=fidelity or None, **overrides)
    return (module.training_configs(cfg), Path(cfg["store"]).expanduser(),
            getattr(module, "record", None), getattr(module, "normalized", None))


def _grid_configs(args: argparse.Namespace) -> list[dict]:
    if (args.temperatures is None) == (args.lrs is None):
        raise ParameterError("give either --temperatures or --lrs (one of them, not both), "
                             "or a --preset.")
    if args.batch_sizes is None:
        raise ParameterError("--batch-sizes is required (one or more batch sizes).")
    for B in args.batch_sizes:
        if B < 1:
            raise ParameterError(f"batch_size must be a positive integer; got {B}.")
    fixed = {key: getattr(args, opt) for opt, key in _FIXED.items() if getattr(args, opt) is not None}
    seeds = args.seeds if args.seeds is not None else [0]
    if args.temperatures is not None:
        for T in args.temperatures:
            if not T > 0:
                raise ParameterError(f"--temperatures must be positive numbers; got {T:g}.")
        return sweep.temperature_grid(args.temperatures, args.batch_sizes, seed=seeds, **fixed)
    return sweep.grid(lr=args.lrs, batch_size=args.batch_sizes, seed=seeds, **fixed)


def sweep_main(argv: Sequence[str]) -> int:
    """``python -m sgdtemp sweep``; returns the exit status (see ``--help``)."""
    args = sweep_parser().parse_args(list(argv))
    try:
        if args.workers is not None and args.workers < 1:
            raise ParameterError(f"--workers must be a positive integer; got {args.workers}.")
        run_fn = normalize = None
        if args.param and not args.preset:
            raise ParameterError("-p/--param sets a chapter parameter and needs --preset.")
        if args.preset:
            raw, store_dir, run_fn, normalize = _preset_configs(args)
        else:
            raw = _grid_configs(args)
            store_dir = Path(args.store).expanduser() if args.store else sweep.default_store_dir()
        if run_fn is None:
            run_fn, normalize = sweep.default_run_fn()
        # Validate every run before anything is computed or written.
        configs = [normalize(dict(c)) for c in raw]
    except ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    store = ResultsStore(store_dir)
    todo = store.missing(configs)
    n_unique = len({config_key(c) for c in configs})
    print(f"{n_unique} runs, {n_unique - len(todo)} already in {store.root}, {len(todo)} to compute")
    if args.dry_run:
        for c in todo:
            print(f"  {config_key(c)[:12]}  {describe(c)}")
        return 0
    if not todo:
        return 0
    results = sweep.run_grid(configs, run_fn, store=store, executor=args.scheduler,
                       n_workers=args.workers, progress=not args.no_progress)
    print(f"computed {results.n_computed} runs, {len(results.failures)} failed")
    for key, err in results.failures.items():
        print(f"  failed {key[:12]}: {err.strip().splitlines()[-1]}", file=sys.stderr)
    return 1 if results.failures else 0


# ---------------------------------------------------------------- verify
VERIFY_EPILOG = """\
examples:
  python -m sgdtemp verify noise_enhancement --max-runs 1
  python -m sgdtemp verify three_factors bayesian_evidence --dry-run
  python -m sgdtemp verify --runs 05e4cc11b9ab
  python -m sgdtemp verify --provenance

Each chosen run is computed again with the training engine as its unit of work was (alone,
or in a vectorized group with the runs that shared it, with the recorded torch thread
count), and its final train/test loss and accuracy and its curves are compared with the
stored record. The tolerance is the rounding noise: on the host (and software) that
computed the run, 1e-6 relative (a CPU run is deterministic there); on another host,
0.11 nats on losses and 0.04 on accuracies, the largest differences measured between
cifar10_temperature runs computed from the same configuration on two hosts
(sgdtemp.verify.CROSS_HOST_TOL says how). The data sets are read from $SGDTEMP_DATA.
--provenance instead checks that every run recorded as computed from a clean tree at
commit C has C's library source hash, and computes nothing.
Exit status: 0 every run within the noise (or every provenance true), 1 not, 2 bad input.
"""


def verify_parser() -> argparse.ArgumentParser:
    """The options of ``python -m sgdtemp verify``."""
    from sgdtemp import verify

    p = _Parser(prog="python -m sgdtemp verify", epilog=VERIFY_EPILOG,
                formatter_class=argparse.RawDescriptionHelpFormatter,
                description="Recompute a sample of the committed training runs and report how "
                            "far each is from its stored record, against the rounding noise.")
    p.add_argument("chapters", nargs="*", metavar="CHAPTER",
                   help="folders of runs under the results folder (default: all of them)")
    p.add_argument("--runs", nargs="+", metavar="KEY",
                   help="recompute these runs (keys, or prefixes of at least 6 characters) "
                        "instead of the cheapest")
    p.add_argument("--max-runs", type=int, default=2, metavar="N",
                   help="the N runs of each chapter with the smallest recorded CPU time "
                        "(default 2); a grouped run is recomputed with its whole group")
    p.add_argument("--results", metavar="DIR",
                   help=f"results folder (default: {verify.default_results_dir()})")
    p.add_argument("--dry-run", action="store_true",
                   help="list the runs that would be recomputed, with their recorded CPU time, "
                        "and exit")
    p.add_argument("--provenance", action="store_true",
                   help="check the provenance of every run instead (nothing is recomputed)")
    p.add_argument("--progress", action="store_true", help="show the training progress bars")
    return p


def verify_main(argv: Sequence[str]) -> int:
    """``python -m sgdtemp verify``; returns the exit status (see ``--help``)."""
    from sgdtemp import verify

    args = verify_parser().parse_args(list(argv))
    results = Path(args.results).expanduser() if args.results else verify.default_results_dir()
    try:
        if not results.is_dir():
            raise ParameterError(f"--results must be a folder of results stores; {results} is "
                                 f"not a folder.")
        if args.provenance:
            return _verify_provenance(results, args.chapters)
        runs = verify.select_runs(results, args.chapters or None, args.runs, args.max_runs)
    except ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    what = "named" if args.runs else f"the {args.max_runs} cheapest per chapter"
    print(f"{len(runs)} runs to recompute ({what}) from {results}")
    for r in runs:
        print(f"  {r.folder} {r.key[:12]}  {describe(r.entry['config'])}  recorded CPU time "
              f"{r.cpu_seconds:.0f} s (group of {r.provenance.get('group_size') or 1})")
    if args.dry_run or not runs:
        return 0
    out = verify.verify_runs(runs, results, progress=args.progress,
                             report=lambda item: print(verify.format_result(item), flush=True))
    bad = [item for item in out if not item["within"]]
    print(f"{len(out) - len(bad)} of {len(out)} recomputed runs within the rounding noise "
          f"(same host: {verify.SAME_HOST_RTOL:g} relative; other host: "
          f"{verify.CROSS_HOST_TOL['loss']:g} nats on losses, "
          f"{verify.CROSS_HOST_TOL['acc']:g} on accuracies)")
    return 1 if bad else 0


def _verify_provenance(results: Path, chapters: Sequence[str]) -> int:
    from sgdtemp import verify

    known = verify.run_folders(results)
    for c in chapters:
        if c not in known:
            raise ParameterError(f"CHAPTER must name a folder of runs in {results} "
                                 f"({', '.join(known) or 'none there'}); got {c!r}.")
    bad = [b for b in verify.audit_provenance(results) if not chapters or b["folder"] in chapters]
    for folder in chapters or known:
        mine = [b for b in bad if b["folder"] == folder]
        line = (f"{folder}: {len(verify.stored_runs(results, folder))} runs, {len(mine)} recorded "
                f"as computed from a clean tree at a commit whose library sources they do not have")
        by_pair: dict[tuple, int] = {}
        for b in mine:
            pair = (str(b["git_commit"])[:10], (b["source_matches_commit"] or "no commit")[:10])
            by_pair[pair] = by_pair.get(pair, 0) + 1
        print(line + "".join(f"\n  {n} recorded at {c}, sources of {m}"
                             for (c, m), n in sorted(by_pair.items())))
    return 1 if bad else 0
