"""Checking committed results: was each run computed by the code its provenance names, and
does computing it again give its record?

A results folder (``results/``) holds one results store per subfolder (one JSON file per
run, :mod:`sgdtemp.store`). Two checks:

* **Provenance.** A run recorded as computed from a clean tree at commit C
  (``git_dirty: false``) must carry C's library source hash
  (:func:`sgdtemp.store.commit_source_hash`). :func:`audit_provenance` lists the runs that do
  not; :func:`correct_provenance` rewrites their provenance to say what is known (the
  recorded hash is kept, ``git_dirty`` becomes true, ``source_matches_commit`` names the
  commit whose sources have that hash, ``provenance_note`` says why), never touching a
  run's ``config``, ``record`` or key.
* **Reproduction.** :func:`select_runs` picks a sample (the cheapest runs per folder by
  their recorded CPU time, or named keys); :func:`verify_runs` computes them again with the
  training engine, as their unit of work was computed (alone, or in a vectorized group with
  the runs that shared it), and compares each record with the stored one against the
  rounding noise: :data:`SAME_HOST_RTOL` on the host that computed it,
  :data:`CROSS_HOST_TOL` on another.

``python -m sgdtemp verify`` (:mod:`sgdtemp.cli`) is the command-line front end of the second.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from sgdtemp import store as store_mod
from sgdtemp.files import atomic_write_json
from sgdtemp.params import ParameterError

#: Relative difference allowed between a record and its recomputation on the host (and with
#: the software) that computed it: a CPU run is deterministic there, so anything above
#: rounding in the last digits means other code, data or settings.
SAME_HOST_RTOL = 1e-6

#: Absolute difference allowed on another host, in nats for losses and fractions for accuracies.
#: Rounding differs between CPUs and training amplifies it. Measured on the 14
#: cifar10_temperature configurations computed on two hosts (the ``reference`` grid, and the
#: first 30 epochs of the ``reference_90`` grid computed on a machine of another platform,
#: 2026-12-02/03): the epoch-0 losses agree to 5e-8, then the curves drift apart by up to
#: 0.104 nats of training loss, 0.099 of test loss and 0.037 of accuracy within 30 epochs;
#: the final (epoch-30) losses by a median of 0.009 nats (training) and 0.018 (test), at
#: most 0.068 and 0.090 — the size of the difference between two seeds. These tolerances
#: are the largest measured differences, rounded up. (The domain-shifted test curves drift
#: by up to 1.3 nats and are reported, not judged, across hosts.)
CROSS_HOST_TOL = {"loss": 0.11, "acc": 0.04}

#: What a record is compared on (the final values, and the largest difference over the curves).
FINALS = ("train_loss", "test_loss", "train_acc", "test_acc")
CURVES = ("train_loss", "train_acc", "test_loss", "test_acc")
SHIFTED_CURVES = ("shifted_test_loss", "shifted_test_acc")

#: Provenance fields that name the host and software a run's rounding depends on.
HOST_FIELDS = ("hostname", "platform", "cpu", "python", "numpy", "torch")


def default_results_dir() -> Path:
    """The ``results`` folder of the checkout holding the library (``<repo>/results``), else
    ``./results``."""
    repo = store_mod.LIBRARY.parent.parent
    return repo / "results" if (repo / "results").is_dir() else Path("results")


# ---------------------------------------------------------------- reading a results folder
@dataclass
class StoredRun:
    """One run file of a results folder: ``folder`` (the store's name, e.g. the chapter),
    ``path`` and its ``entry`` (``key``, ``config``, ``record``, ``provenance``)."""

    folder: str
    path: Path
    entry: dict = field(repr=False)

    @property
    def key(self) -> str:
        return self.entry["key"]

    @property
    def provenance(self) -> dict:
        return self.entry.get("provenance") or {}

    @property
    def cpu_seconds(self) -> float:
        """The recorded CPU time of the run's unit of work (its group's, when grouped)."""
        t = self.provenance.get("cpu_time_s")
        return float(t) if t is not None else math.inf

    def unit_id(self) -> tuple:
        """What the runs computed in one unit of work share: the unit's wall and CPU times
        and size, stored with each of its runs."""
        p = self.provenance
        return (p.get("wall_time_s"), p.get("cpu_time_s"), p.get("group_size") or 1)


def run_folders(results_dir: str | os.PathLike) -> list[str]:
    """Names of the subfolders of ``results_dir`` that hold run files, sorted."""
    root = Path(results_dir)
    if not root.is_dir():
        return []
    return sorted(d.name for d in root.iterdir()
                  if d.is_dir() and any(_is_run(p) for p in d.glob("*.json")))


def _read(path: Path) -> dict | None:
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    ok = isinstance(entry, dict) and {"key", "config", "record"} <= set(entry)
    return entry if ok else None


def _is_run(path: Path) -> bool:
    return not path.name.startswith(".") and _read(path) is not None


def stored_runs(results_dir: str | os.PathLike, folder: str) -> list[StoredRun]:
    """Every readable run file of ``results_dir/folder``, in key order (other JSON files,
    such as the claims report's, are not runs and are left out)."""
    out = []
    for path in sorted((Path(results_dir) / folder).glob("*.json")):
        entry = None if path.name.startswith(".") else _read(path)
        if entry is not None:
            out.append(StoredRun(folder, path, entry))
    return out


# ---------------------------------------------------------------- provenance
class SourceIndex:
    """The library source hash of every commit that changed the library (``git log``), and
    of any commit asked about: to tell which commit's code a recorded hash is."""

    def __init__(self, library: str | os.PathLike | None = None):
        self.library = library
        self.by_hash: dict[str, str] = {}
        # Oldest first, so that a state that recurs names the commit that introduced it.
        for c in reversed(store_mod.library_commits(library)):
            h = store_mod.commit_source_hash(c, library)
            if h is not None:
                self.by_hash.setdefault(h, c)

    def of_commit(self, commit: str | None) -> str | None:
        """The source hash of ``commit`` (None if git cannot read it)."""
        return store_mod.commit_source_hash(commit, self.library)

    def commit_of(self, source_sha256: str | None) -> str | None:
        """The earliest commit in the library's history whose sources have this hash."""
        return self.by_hash.get(source_sha256) if source_sha256 else None


def audit_provenance(results_dir: str | os.PathLike,
                     index: SourceIndex | None = None) -> list[dict]:
    """The runs under ``results_dir`` recorded as computed from a clean tree at a commit
    whose library sources do not have the recorded hash: one dict per run with ``folder``,
    ``key``, ``path``, ``git_commit``, ``sgdtemp_source_sha256``, ``commit_source_sha256``
    (None when git cannot read the commit) and ``source_matches_commit`` (the commit whose
    sources have the recorded hash, or None)."""
    index = index if index is not None else SourceIndex()
    found = []
    for folder in run_folders(results_dir):
        for run in stored_runs(results_dir, folder):
            p = run.provenance
            if p.get("git_dirty") is not False:
                continue
            committed = index.of_commit(p.get("git_commit"))
            recorded = p.get("sgdtemp_source_sha256")
            if committed is not None and committed == recorded:
                continue
            found.append({"folder": folder, "key": run.key, "path": run.path,
                          "git_commit": p.get("git_commit"), "sgdtemp_source_sha256": recorded,
                          "commit_source_sha256": committed,
                          "source_matches_commit": index.commit_of(recorded)})
    return found


def _note(commit: str | None, match: str | None, readable: bool) -> str:
    c = str(commit)[:10]
    if not readable:
        return f"corrected: recorded as a clean tree at {c}, which git cannot read here to confirm"
    named = f"{match[:10]}'s" if match else "no commit's"
    return (f"corrected: not a clean tree at {c}; the source hash is {named} (the sweep read "
            f"the commit once when it started, while its tree received commits, and hashed the "
            f"sources after each run)")


def correct_provenance(results_dir: str | os.PathLike, *, write: bool = True,
                       index: SourceIndex | None = None) -> dict[str, int]:
    """Rewrite the provenance of every mislabelled run under ``results_dir``
    (:func:`audit_provenance`) to say what is known: ``git_dirty`` true (null when git
    cannot read the recorded commit), the recorded ``sgdtemp_source_sha256`` kept,
    ``source_matches_commit`` (full hash of the commit whose library sources have that
    hash, or null) and a one-sentence ``provenance_note``. ``config``, ``record`` and key
    are not changed; each file is rewritten atomically. A corrected run no longer claims a
    clean tree, so running this again changes nothing.

    Returns the number of runs corrected per folder (every folder holding runs, 0 where
    none was). ``write=False`` counts without writing.
    """
    index = index if index is not None else SourceIndex()
    counts = {folder: 0 for folder in run_folders(results_dir)}
    for bad in audit_provenance(results_dir, index):
        counts[bad["folder"]] += 1
        if not write:
            continue
        entry = json.loads(Path(bad["path"]).read_text(encoding="utf-8"))
        prov = dict(entry["provenance"])
        readable = bad["commit_source_sha256"] is not None
        prov["git_dirty"] = True if readable else None
        prov["source_matches_commit"] = bad["source_matches_commit"]
        prov["provenance_note"] = _note(bad["git_commit"], bad["source_matches_commit"],
                                        readable)
        entry["provenance"] = prov
        atomic_write_json(bad["path"], entry)
    return counts


# ---------------------------------------------------------------- choosing runs to recompute
def select_runs(results_dir: str | os.PathLike, folders: Sequence[str] | None = None,
                keys: Sequence[str] | None = None, max_runs: int = 2) -> list[StoredRun]:
    """The runs to recompute: those named by ``keys`` (full keys or unambiguous prefixes of
    at least 6 characters), else the ``max_runs`` cheapest of each folder by recorded CPU
    time (its unit's). ``folders`` limits the search (default: every folder holding runs).
    Raises :class:`~sgdtemp.params.ParameterError` naming the folder or key that cannot be found."""
    known = run_folders(results_dir)
    if folders:
        for f in folders:
            if f not in known:
                raise ParameterError(f"CHAPTER must name a folder of runs in {results_dir} "
                                     f"({', '.join(known) or 'none there'}); got {f!r}.")
    else:
        folders = known
    runs = {f: stored_runs(results_dir, f) for f in folders}
    if keys:
        chosen = []
        for k in keys:
            if len(k) < 6 or any(ch not in "0123456789abcdef" for ch in k):
                raise ParameterError(f"--runs takes run keys (at least 6 hexadecimal "
                                     f"characters of a file name); got {k!r}.")
            hits = [r for f in folders for r in runs[f] if r.key.startswith(k)]
            if len(hits) != 1:
                where = ", ".join(folders)
                raise ParameterError(f"--runs {k} matches {len(hits)} runs in {where}; give "
                                     f"a key that names exactly one.")
            chosen.append(hits[0])
        return chosen
    if max_runs < 1:
        raise ParameterError(f"--max-runs must be a positive integer; got {max_runs}.")
    out = []
    for f in folders:
        out += sorted(runs[f], key=lambda r: (r.cpu_seconds, r.key))[:max_runs]
    return out


def unit_of(run: StoredRun, results_dir: str | os.PathLike) -> list[StoredRun]:
    """The runs computed in one unit of work with ``run`` (itself first): the runs of its
    folder that share its unit's times and size and its group key. A run computed alone,
    or whose group cannot be found whole (:func:`recompute_unit` then fills the group with
    copies of it), is its own unit."""
    size = int(run.provenance.get("group_size") or 1)
    if size == 1:
        return [run]
    from sgdtemp import train

    gkey = train.group_key(train.training_config(**run.entry["config"]))
    mates = [r for r in stored_runs(results_dir, run.folder)
             if r.key != run.key and r.unit_id() == run.unit_id()
             and train.group_key(train.training_config(**r.entry["config"])) == gkey]
    return [run] + mates if len(mates) == size - 1 else [run]


# ---------------------------------------------------------------- recomputing and comparing
def host_fields() -> dict:
    """This process's values of :data:`HOST_FIELDS`."""
    rt = store_mod.runtime_provenance()
    import torch

    rt["torch"] = torch.__version__
    return {k: rt.get(k) for k in HOST_FIELDS}


def same_host(prov: Mapping[str, Any], here: Mapping[str, Any]) -> bool:
    """Whether a run's provenance names this host and software (a field the run did not
    record, such as ``cpu`` before it was recorded, is not compared)."""
    return all(prov.get(k) == here.get(k) for k in HOST_FIELDS if k in prov)


def _pairs(stored: Mapping[str, Any], new: Mapping[str, Any],
           names: Iterable[str]) -> Iterator[tuple[str, str, Any, Any]]:
    """(what, name, stored value, new value) for the finals and every curve point."""
    for name in names:
        if name in FINALS:
            yield "final", name, stored["final"].get(name), new["final"].get(name)
    for name in names:
        a, b = stored["curves"].get(name), new["curves"].get(name)
        if a is None and b is None:
            continue
        a, b = list(a or []), list(b or [])
        for i in range(max(len(a), len(b))):
            yield ("curve", name, a[i] if i < len(a) else None, b[i] if i < len(b) else None)


def _delta(a: Any, b: Any) -> tuple[float, float]:
    """(absolute, relative) difference of two recorded numbers; a missing or non-finite
    value against a finite one is infinitely different, two equal ones not at all."""
    if a is None or b is None:
        return (0.0, 0.0) if a is None and b is None else (math.inf, math.inf)
    a, b = float(a), float(b)
    if not (math.isfinite(a) and math.isfinite(b)):
        same = (math.isnan(a) and math.isnan(b)) or a == b
        return (0.0, 0.0) if same else (math.inf, math.inf)
    d = abs(a - b)
    scale = max(abs(a), abs(b))
    return d, (d / scale if scale > 0 else 0.0)


def compare_records(stored: Mapping[str, Any], new: Mapping[str, Any],
                    same_host_run: bool) -> dict:
    """How ``new`` differs from ``stored`` and whether that is rounding noise.

    Returns ``differences`` (absolute: ``final_<name>`` for each name in ``FINALS``; ``curve_loss``
    and ``curve_acc``, the largest over the train and test curves and epochs;
    ``shifted_curve_loss`` and ``shifted_curve_acc``), ``max_relative`` (the largest
    relative difference over all of them), ``problems`` (different epochs or divergence),
    ``tolerance`` (in words) and ``within``: on the same host every value within
    :data:`SAME_HOST_RTOL` relative; on another host the finals and train/test curves within
    :data:`CROSS_HOST_TOL`.
    """
    diffs = {f"final_{n}": 0.0 for n in FINALS}
    diffs.update(curve_loss=0.0, curve_acc=0.0, shifted_curve_loss=0.0, shifted_curve_acc=0.0)
    rel = 0.0
    for what, name, a, b in _pairs(stored, new, CURVES + SHIFTED_CURVES):
        d, r = _delta(a, b)
        rel = max(rel, r)
        if what == "final":
            slot = f"final_{name}"
        else:
            slot = ("shifted_" if name.startswith("shifted") else "") + \
                   ("curve_loss" if name.endswith("loss") else "curve_acc")
        diffs[slot] = max(diffs[slot], d)
    problems = []
    if list(stored["curves"].get("epoch", [])) != list(new["curves"].get("epoch", [])):
        problems.append("the epochs differ")
    if bool(stored.get("diverged")) != bool(new.get("diverged")):
        problems.append(f"diverged {bool(new.get('diverged'))} (stored "
                        f"{bool(stored.get('diverged'))})")
    elif stored.get("diverged_step") != new.get("diverged_step"):
        problems.append(f"diverged at step {new.get('diverged_step')} (stored "
                        f"{stored.get('diverged_step')})")
    if same_host_run:
        within = rel <= SAME_HOST_RTOL
        tolerance = f"same host: {SAME_HOST_RTOL:g} relative"
    else:
        loss = max(diffs["final_train_loss"], diffs["final_test_loss"], diffs["curve_loss"])
        acc = max(diffs["final_train_acc"], diffs["final_test_acc"], diffs["curve_acc"])
        within = loss <= CROSS_HOST_TOL["loss"] and acc <= CROSS_HOST_TOL["acc"]
        tolerance = (f"other host: {CROSS_HOST_TOL['loss']:g} nats on losses, "
                     f"{CROSS_HOST_TOL['acc']:g} on accuracies")
    return {"differences": diffs, "max_relative": rel, "problems": problems,
            "tolerance": tolerance, "within": within and not problems}


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch threads (the run's recorded count: reductions split over another
    number of threads round differently), then restore the count."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def recompute_unit(unit: Sequence[StoredRun], progress: bool = False) -> tuple[list[dict], dict]:
    """The records of ``unit`` computed again as they were: one run alone with
    ``run_training``, a group with ``run_trainings`` (one vectorized group), with the
    recorded torch thread count. A grouped run whose group was not found whole is computed
    in a group of its recorded size filled with copies of it (a run's numbers in a group do
    not depend on the other members; alone they round differently). Returns the records of
    ``unit`` and ``{"wall_s", "cpu_s", "copies"}``."""
    from sgdtemp import train

    configs = [train.training_config(**r.entry["config"]) for r in unit]
    size = int(unit[0].provenance.get("group_size") or 1)
    copies = max(0, size - len(configs))
    configs += [configs[0]] * copies
    t0, c0 = time.perf_counter(), time.process_time()
    with _torch_threads(unit[0].provenance.get("torch_threads")):
        if len(configs) == 1:
            records = [train.run_training(configs[0], progress=progress)]
        else:
            records = train.run_trainings(configs, progress=progress, max_group=len(configs))
    return records[:len(unit)], {"wall_s": time.perf_counter() - t0,
                                 "cpu_s": time.process_time() - c0, "copies": copies}


def verify_runs(runs: Sequence[StoredRun], results_dir: str | os.PathLike,
                progress: bool = False, report: Any = None) -> list[dict]:
    """Compute ``runs`` again (each with the runs of its unit of work, :func:`unit_of`) and
    compare them with their records (:func:`compare_records`).

    Returns one dict per run recomputed (the units' other runs included, once each):
    ``folder``, ``key``, ``config``, ``same_host``, ``same_sources`` (this library's source
    hash is the recorded one), ``unit_size`` (runs trained together, ``copies`` of them
    fillers), ``seconds`` and ``cpu_seconds`` (the unit's),
    ``recorded_cpu_seconds`` and :func:`compare_records`'s entries. ``report``, if given, is
    called with each dict as it is ready.
    """
    here = host_fields()
    sources = store_mod.source_hash()
    done: set[str] = set()
    out = []
    for run in runs:
        if run.key in done:
            continue
        unit = unit_of(run, results_dir)
        records, cost = recompute_unit(unit, progress)
        for member, record in zip(unit, records):
            done.add(member.key)
            prov = member.provenance
            same = same_host(prov, here)
            item = {"folder": member.folder, "key": member.key, "config": member.entry["config"],
                    "same_host": same,
                    "same_sources": prov.get("sgdtemp_source_sha256") == sources,
                    "unit_size": len(unit) + cost["copies"], "copies": cost["copies"],
                    "seconds": cost["wall_s"], "cpu_seconds": cost["cpu_s"],
                    "recorded_cpu_seconds": prov.get("cpu_time_s"),
                    **compare_records(member.entry["record"], record, same)}
            out.append(item)
            if report is not None:
                report(item)
    return out


def describe(config: Mapping[str, Any]) -> str:
    """A run's configuration in one short line."""
    keys = ("dataset", "model", "lr", "batch_size", "seed", "epochs", "n_train")
    return " ".join(f"{k}={config[k]}" for k in keys if k in config)


def _unit_words(item: Mapping[str, Any]) -> str:
    if item["unit_size"] == 1:
        return "alone"
    fill = f", {item['copies']} of them copies" if item["copies"] else ""
    return f"in a group of {item['unit_size']}{fill}"


def format_result(item: Mapping[str, Any]) -> str:
    """Two lines on one recomputed run: what it is, its differences and the verdict."""
    d = item["differences"]
    head = (f"{item['folder']} {item['key'][:12]}  {describe(item['config'])}  "
            f"({'same host' if item['same_host'] else 'other host'}, "
            f"{'same' if item['same_sources'] else 'other'} library sources; "
            f"{_unit_words(item)} recomputed in {item['seconds']:.0f} s)")
    body = (f"  final |Δ|: train_loss {d['final_train_loss']:.2e}, test_loss "
            f"{d['final_test_loss']:.2e}, train_acc {d['final_train_acc']:.2e}, test_acc "
            f"{d['final_test_acc']:.2e}; curves max |Δ|: loss {d['curve_loss']:.2e}, acc "
            f"{d['curve_acc']:.2e} (shifted: {d['shifted_curve_loss']:.2e}, "
            f"{d['shifted_curve_acc']:.2e}); max relative {item['max_relative']:.2e}  "
            f"[{item['tolerance']}] -> "
            f"{'within the rounding noise' if item['within'] else 'OUTSIDE the rounding noise'}")
    if item["problems"]:
        body += f" ({'; '.join(item['problems'])})"
    return head + "\n" + body


__all__ = ["CROSS_HOST_TOL", "SAME_HOST_RTOL", "SourceIndex", "StoredRun", "audit_provenance",
           "compare_records", "correct_provenance", "default_results_dir", "format_result",
           "recompute_unit", "run_folders", "same_host", "select_runs", "stored_runs",
           "unit_of", "verify_runs"]
