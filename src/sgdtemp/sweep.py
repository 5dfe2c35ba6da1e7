"""Sweeps: grids of training runs computed through the results store.

:func:`run_grid` asks the :class:`~sgdtemp.store.ResultsStore` first, computes
only the configurations it lacks, and stores each result the moment it
finishes, so a sweep killed midway and started again recomputes only the runs
that had not finished. Runs execute

* in a local process pool (default; ``spawn`` start method, torch limited to
  ``cpu_count // n_workers`` threads per worker so workers do not fight for cores),
* on a Dask distributed cluster when ``executor`` is a scheduler address
  (``tcp://host:8786``) or a ``distributed.Client``,
* or in this process (``executor="serial"``; no pickling, easiest to debug).

With the default run function (``sgdtemp.train``), runs that can share a vectorized
step (same stateless model, data and batch size, :func:`sgdtemp.training_config.plan_groups`)
are sent out as groups to :func:`sgdtemp.train.run_trainings`; each run is still
stored in its own file, with the group's size in its provenance. Groups are cut so
that every worker gets work (at most ⌈runs / workers⌉ runs, and 16, a group).

A run that raises is reported (a warning, ``SweepResults.failures`` and a file
``<store>/failed/<key>.json`` with the traceback) and the sweep goes on; it is
retried by the next sweep (a group that raises fails all its runs). A diverged
run is a normal result.

A chapter calls :func:`run_arms`: its arms of runs (nested lists of configurations) go
through :func:`run_grid` as one list and come back nested as they went in; a failed run
stops the chapter (:class:`RunsFailed`) after the others are stored.

Each unit records the code that computes it, taken in its process when it starts
(:func:`sgdtemp.store.code_state`: commit, dirtiness, source hash) and checked again when it
ends: the tree a sweep runs from may receive commits while it runs, and a worker keeps the
modules it imported. ``python -m sgdtemp sweep`` (:mod:`sgdtemp.cli`) is the command-line
front end.
"""

from __future__ import annotations

import functools
import itertools
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from sgdtemp import store as store_mod
from sgdtemp.files import atomic_write_json
from sgdtemp.store import ResultsStore, config_key

RunFn = Callable[[dict], dict]

#: Where results go when no store is named: ``$SGDTEMP_RESULTS`` or the user cache.
RESULTS_ENV = "SGDTEMP_RESULTS"


def default_store_dir() -> Path:
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "sgdtemp" / "results"


# ---------------------------------------------------------------- grids
def grid(**axes: Any) -> list[dict]:
    """The product of the axes: ``grid(lr=[0.1, 0.2], seed=[0, 1], epochs=3)`` gives four
    configurations. A list or tuple is an axis, anything else a fixed value; the last
    axis varies fastest."""
    names = list(axes)
    values = [list(v) if isinstance(v, (list, tuple)) else [v] for v in axes.values()]
    return [dict(zip(names, combo)) for combo in itertools.product(*values)]


def lr_for(temperature: float, batch_size: int) -> float:
    """η = T·B, rounded to 12 significant digits so that equal (T, B) always give the
    same float (and hence the same store key) however T was computed."""
    return float(f"{temperature * batch_size:.12g}")


def temperature_of(config: Mapping[str, Any]) -> float:
    """T = lr / batch_size of a configuration, rounded like :func:`lr_for`."""
    return float(f"{config['lr'] / config['batch_size']:.12g}")


def temperature_grid(temperatures: Sequence[float], batch_sizes: Sequence[int],
                     **axes: Any) -> list[dict]:
    """For each temperature T and each batch size B, the pair (lr = T·B, batch_size = B),
    crossed with the other ``axes`` as in :func:`grid` (e.g. ``seed=[0, 1]``)."""
    out = []
    for T in temperatures:
        for B in batch_sizes:
            for rest in grid(**axes):
                out.append({"lr": lr_for(T, B), "batch_size": int(B), **rest})
    return out


def grid_cost(configs: Iterable[Mapping[str, Any]], store: ResultsStore | str | os.PathLike,
              normalize: Callable[[dict], dict] | None = None) -> dict:
    """What the stored runs of ``configs`` cost, from their provenance: ``cpu_seconds`` (Σ
    over runs of the unit's CPU time / its group size), ``wall_seconds`` (likewise for wall
    time, summed: the time one worker would take) and ``n_runs`` found. Runs missing from
    the store are not counted."""
    if normalize is None:
        _, normalize = default_run_fn()
    store = _as_store(store)
    cpu = wall = 0.0
    n = 0
    for c in {config_key(normalize(dict(c))): normalize(dict(c)) for c in configs}.values():
        entry = store.entry(c)
        if entry is None:
            continue
        prov = entry.get("provenance", {})
        share = 1.0 / float(prov.get("group_size") or 1)
        cpu += float(prov.get("cpu_time_s") or 0.0) * share
        wall += float(prov.get("wall_time_s") or 0.0) * share
        n += 1
    return {"cpu_seconds": cpu, "wall_seconds": wall, "n_runs": n}


# ---------------------------------------------------------------- execution
def _limit_threads(n_threads: int | None) -> None:
    """Cap the BLAS/OpenMP threads of this process (a worker) at ``n_threads``."""
    if not n_threads:
        return
    # torch reads these when it is first imported; set them before that happens.
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(n_threads)
    torch = sys.modules.get("torch")
    if torch is None:
        return
    if torch.get_num_threads() != n_threads:
        torch.set_num_threads(n_threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only allowed before the first parallel work; fine to skip
        pass


class OneByOne:
    """``run_many(configs) -> records`` that calls ``run_fn`` on each (picklable)."""

    def __init__(self, run_fn: RunFn):
        self.run_fn = run_fn

    def __call__(self, configs: list[dict]) -> list[dict]:
        return [self.run_fn(dict(c)) for c in configs]


def _execute(run_many: Callable[[list[dict]], list[dict]], configs: list[dict],
             n_threads: int | None = None) -> list[dict]:
    """Run one unit (one run, or a group trained together) where the executor placed it;
    never raises an Exception: each run's outcome is ``{"ok": True, "record", ...}`` or
    ``{"ok": False, "error": traceback}`` (a group that raises fails every run in it).
    Wall and CPU times are the unit's; ``runtime["group_size"]`` says how many runs shared
    them; ``code`` is the code that computed them (:func:`sgdtemp.store.code_state`, taken
    before the unit started and checked again after it ended)."""
    _limit_threads(n_threads)
    # The code that computes this unit, read here and now: the sweep's tree may have
    # received commits since the sweep started, and this worker may have imported the
    # library before they came (code_state compares both).
    code = store_mod.code_state()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        records = run_many([dict(c) for c in configs])
    except Exception:
        err = traceback.format_exc()
        return [{"ok": False, "error": err, "wall_time_s": time.perf_counter() - t0}
                for _ in configs]
    code = store_mod.code_state_after(code)
    runtime = store_mod.runtime_provenance()
    # CPU time of the whole process (all its threads): on a shared machine it says what
    # the run cost better than the wall time does.
    runtime["cpu_time_s"] = time.process_time() - c0
    runtime["torch_threads"] = _torch_threads()
    runtime["group_size"] = len(configs)
    wall = time.perf_counter() - t0
    return [{"ok": True, "record": r, "wall_time_s": wall, "runtime": runtime, "code": code}
            for r in records]


def _torch_threads() -> int | None:
    torch = sys.modules.get("torch")
    return None if torch is None else torch.get_num_threads()


class SweepResults(list):
    """The records of a grid, in the order of its configurations (``None`` where a run
    failed), with ``failures`` (key → traceback), ``n_computed`` and ``n_stored``
    (found in the store before the sweep)."""

    def __init__(self, records: Iterable[Any], failures: dict[str, str], n_computed: int,
                 n_stored: int):
        super().__init__(records)
        self.failures = failures
        self.n_computed = n_computed
        self.n_stored = n_stored


def default_run_fn() -> tuple[RunFn, Callable[[dict], dict]]:
    """``sgdtemp.train.run_training`` without its progress bar, and its normalizer."""
    from sgdtemp import train

    return (functools.partial(train.run_training, progress=False),
            lambda config: train.training_config(**config))


def _is_default_run_fn(run_fn: Any) -> bool:
    from sgdtemp import train

    return isinstance(run_fn, functools.partial) and run_fn.func is train.run_training


def _units(todo: list[dict], run_fn: RunFn, n_workers: int) -> tuple[list[list[dict]], Any]:
    """The runs cut into units of work, and the function that computes a unit."""
    if not _is_default_run_fn(run_fn):
        return [[c] for c in todo], OneByOne(run_fn)
    from sgdtemp import train

    max_group = max(1, min(16, -(-len(todo) // max(1, n_workers))))
    groups = train.plan_groups(todo, max_group=max_group)
    return ([[todo[i] for i in g] for g in groups],
            functools.partial(train.run_trainings, progress=False))


def _as_store(store: ResultsStore | str | os.PathLike | None) -> ResultsStore:
    if isinstance(store, ResultsStore):
        return store
    return ResultsStore(default_store_dir() if store is None else store)


def _failure_path(store: ResultsStore, key: str) -> Path:
    return store.root / "failed" / f"{key}.json"


def run_grid(configs: Iterable[Mapping[str, Any]], run_fn: RunFn | None = None, *,
             store: ResultsStore | str | os.PathLike | None = None,
             executor: Any = None, n_workers: int | None = None,
             normalize: Callable[[dict], dict] | None = None,
             threads_per_worker: int | None = None, progress: bool = True) -> SweepResults:
    """Records of every configuration, computing only those the store lacks.

    Parameters
    ----------
    configs : the runs (duplicates are computed once).
    run_fn : ``run_fn(config) -> record`` (picklable for the pool and Dask). Default:
        ``sgdtemp.train.run_training`` without its progress bar.
    store : a :class:`.ResultsStore` or its folder (default :func:`.default_store_dir`).
    executor : ``None`` or ``"local"`` (process pool), ``"serial"`` (this process), a
        Dask scheduler address, or a ``distributed.Client``.
    n_workers : processes of the local pool (default: min(runs to do, CPU count)).
    normalize : applied to each configuration before it is keyed (fills defaults).
        Default: ``sgdtemp.train.training_config`` with the default ``run_fn``, else none.
    threads_per_worker : torch threads per run (default: CPU count // n_workers for the
        pool, unchanged for Dask and serial).
    progress : show a tqdm bar over runs.

    Each result is written to the store as soon as its run finishes; on
    KeyboardInterrupt the runs not yet finished are cancelled and the interrupt
    re-raised, the finished ones staying stored.
    """
    if run_fn is None:
        run_fn, default_normalize = default_run_fn()
        normalize = normalize or default_normalize
    store = _as_store(store)
    configs = [dict(normalize(dict(c)) if normalize else c) for c in configs]
    keys = [config_key(c) for c in configs]
    todo = store.missing(configs)
    n_stored = len(dict.fromkeys(keys)) - len(todo)
    failures: dict[str, str] = {}
    if todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="training runs", unit="run", disable=not progress)

        def finish(config: dict, out: dict) -> None:
            key = config_key(config)
            if out.get("ok"):
                record = out["record"]
                prov = store_mod.provenance(
                    wall_time_s=out["wall_time_s"], seed=config.get("seed"),
                    device=record.get("device", config.get("device")),
                    runtime=out["runtime"], code=out["code"])
                store.put(config, record, prov)
                _failure_path(store, key).unlink(missing_ok=True)
            else:
                failures[key] = out["error"]
                atomic_write_json(_failure_path(store, key), {
                    "key": key, "config": store_mod.canonical_config(config),
                    "error": out["error"], "created": store_mod.now_utc()})
                bar.set_postfix(failed=len(failures))
            bar.update(1)

        workers = (n_workers or os.cpu_count() or 1) if executor in (None, "local") else 1
        units, run_many = _units(todo, run_fn, workers if executor != "serial" else 1)
        try:
            _dispatch(units, run_many, executor, n_workers, threads_per_worker, finish)
        finally:
            bar.close()
        if failures:
            first = next(iter(failures.values())).strip().splitlines()[-1]
            warnings.warn(f"{len(failures)} of {len(todo)} runs failed (first: {first}); "
                          f"tracebacks are in {store.root / 'failed'}.", stacklevel=2)
    records = []
    for c, k in zip(configs, keys):
        records.append(None if k in failures else store.get(c))
    return SweepResults(records, failures, len(todo) - len(failures), n_stored)


class RunsFailed(RuntimeError):
    """Some runs of a chapter's arms raised; their tracebacks are in ``<store>/failed``."""


class ArmRecords(dict):
    """Each arm's records, nested as its configurations were, with ``n_runs``,
    ``n_stored`` (read from the store), ``n_computed`` and ``seconds`` (wall time)."""

    def __init__(self, by_arm: dict[str, Any], results: SweepResults, store: Path,
                 seconds: float):
        super().__init__(by_arm)
        self.n_runs = len(results)
        self.n_stored = results.n_stored
        self.n_computed = results.n_computed
        self.store = store
        self.seconds = seconds

    def summary(self) -> str:
        """One line: how many runs were read from the store and how many computed."""
        return (f"{self.n_runs} runs: {self.n_stored} read from {self.store}, "
                f"{self.n_computed} computed, in {self.seconds:.1f} s")


def _leaves(tree: Any) -> list[Mapping[str, Any]]:
    """The configurations of a nested list, depth first (a configuration is a Mapping)."""
    if isinstance(tree, Mapping):
        return [tree]
    return [leaf for branch in tree for leaf in _leaves(branch)]


def _refill(tree: Any, values: Iterable[Any]) -> Any:
    """``tree`` with its configurations replaced, in :func:`_leaves` order, by ``values``."""
    values = iter(values)

    def fill(t: Any) -> Any:
        return next(values) if isinstance(t, Mapping) else [fill(b) for b in t]

    return fill(tree)


def run_arms(arms: Mapping[str, Any], *, store: ResultsStore | str | os.PathLike,
             workers: int | None = 1, scheduler: str | None = None,
             run_fn: RunFn | None = None) -> ArmRecords:
    """The records of a chapter's arms: every run the store holds is read, the others are
    computed and stored, and each arm comes back nested as its configurations were.

    ``arms`` maps an arm's name to a configuration or a nested list of them (e.g. cells ×
    seeds). The runs execute in this process for ``workers = 1``, in a local process pool
    of ``workers`` otherwise (``None``: one per CPU), or on the Dask ``scheduler`` when one
    is named (see :func:`run_grid`). Raises :class:`RunsFailed` if any run raised, after every other
    run is stored: a chapter cannot go on with holes in its grid, and the next call
    retries only the failed runs.
    """
    names = list(arms)
    flat = [_leaves(arms[a]) for a in names]
    if os.environ.get("SGDTEMP_STORE_ONLY"):
        _require_stored([c for f in flat for c in f], _as_store(store))
    t0 = time.perf_counter()
    results = run_grid([c for f in flat for c in f], run_fn, store=store,
                       executor=scheduler or ("serial" if workers == 1 else "local"),
                       n_workers=workers, progress=False)
    seconds = time.perf_counter() - t0
    root = _as_store(store).root
    if results.failures:
        raise RunsFailed(f"{len(results.failures)} of {len(results)} runs failed; their "
                         f"tracebacks are in {root / 'failed'} (run again to retry them).")
    by_arm, i = {}, 0
    for a, f in zip(names, flat):
        by_arm[a] = _refill(arms[a], results[i:i + len(f)])
        i += len(f)
    return ArmRecords(by_arm, results, root, seconds)


class RunsMissing(RuntimeError):
    """Runs a chapter needs are not in its store, and computing them is not allowed."""


def _require_stored(configs: list[dict], store: ResultsStore) -> None:
    """With ``SGDTEMP_STORE_ONLY`` set (to read committed results and never train, e.g.
    while a sweep is still filling the store), refuse before any compute when a run is
    missing, in one sentence."""
    missing = [c for c in configs if store.get(c) is None]
    if missing:
        raise RunsMissing(f"{len(missing)} of {len(configs)} runs are not in {store.root} and "
                          f"SGDTEMP_STORE_ONLY is set, so none is computed (unset it to train them, "
                          f"or run the sweep: python -m sgdtemp sweep --preset CHAPTER:FIDELITY).")


def _dispatch(units: list[list[dict]], run_many, executor: Any, n_workers: int | None,
              threads: int | None, finish: Callable[[dict, dict], None]) -> None:
    if executor == "serial":
        torch = sys.modules.get("torch")
        before = torch.get_num_threads() if torch is not None and threads else None
        try:
            for unit in units:
                for c, out in zip(unit, _execute(run_many, unit, threads)):
                    finish(c, out)
        finally:
            if before is not None:  # give this process its thread count back
                torch.set_num_threads(before)
    elif executor in (None, "local"):
        _dispatch_pool(units, run_many, n_workers, threads, finish)
    else:
        _dispatch_dask(units, run_many, executor, threads, finish)


def _dispatch_pool(todo, run_fn, n_workers, threads, finish) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    cpus = os.cpu_count() or 1
    n_workers = max(1, min(n_workers or cpus, len(todo)))
    threads = threads or max(1, cpus // n_workers)
    pool = ProcessPoolExecutor(max_workers=n_workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_limit_threads, initargs=(threads,))
    try:
        futures = {pool.submit(_execute, run_fn, unit, threads): unit for unit in todo}
        for fut in as_completed(futures):
            unit = futures[fut]
            try:
                outs = fut.result()
            except (Exception, SystemExit):  # the worker died (BrokenProcessPool) or exited
                outs = [{"ok": False, "error": traceback.format_exc()}] * len(unit)
            for c, out in zip(unit, outs):
                finish(c, out)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        _terminate(pool)
        raise
    pool.shutdown(wait=True)


def _terminate(pool) -> None:
    """Stop the pool's worker processes now (they may be mid-run after an interrupt)."""
    for p in list((getattr(pool, "_processes", None) or {}).values()):
        if p.is_alive():
            p.terminate()


def _dispatch_dask(todo, run_fn, executor, threads, finish) -> None:
    import distributed

    own = not isinstance(executor, distributed.Client)
    client = distributed.Client(executor) if own else executor
    try:
        futures = {client.submit(_execute, run_fn, unit, threads, pure=False,
                                 key=f"sgdtemp-run-{config_key(unit[0])[:16]}-{i}"): unit
                   for i, unit in enumerate(todo)}
        try:
            for fut in distributed.as_completed(list(futures)):
                unit = futures[fut]
                try:
                    outs = fut.result()
                except Exception:  # lost worker, cancelled task, unpicklable result
                    outs = [{"ok": False, "error": traceback.format_exc()}] * len(unit)
                for c, out in zip(unit, outs):
                    finish(c, out)
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        if own:
            client.close()


__all__ = ["ArmRecords", "RunsFailed", "RunsMissing", "SweepResults", "default_run_fn", "default_store_dir",
           "grid", "grid_cost", "lr_for", "run_arms", "run_grid", "temperature_grid",
           "temperature_of"]
