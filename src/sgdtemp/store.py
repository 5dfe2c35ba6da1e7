"""The results store: one JSON file per training run, keyed by its configuration.

A training run is a pure function of its configuration (dataset, model, lr,
batch_size, epochs, seed, ...). The store files its result under

    <root>/<key>.json,   key = sha256(canonical JSON of the configuration),

holding ``{"key", "config", "record", "provenance"}``. A sweep asks the store
first and computes only what is missing, so committed reference results make a
book build fast and an interrupted sweep resumes where it stopped.

What enters the key: every configuration entry that can change the result,
including ``device`` (CPU and GPU arithmetic differ). What does not: the
entries in :data:`LOCATION_KEYS` (``data_dir``), which say *where* the data
lie, not *what* is computed; the same run read from another copy of the data
finds its stored result. Configurations should be normalized (defaults filled
in, e.g. by ``sgdtemp.train.training_config``) before they are keyed, so that
an explicit default and an omitted one name the same run.

Writes are atomic (temporary file + rename, :mod:`sgdtemp.files`): a reader
never sees a half-written file, and a crash mid-write leaves no file at all.
A file that cannot be read anyway (edited or damaged by hand) is reported
with its path by :meth:`ResultsStore.get`, skipped with a warning when
iterating, and counted as missing by :meth:`ResultsStore.missing`, so a
sweep recomputes and replaces it.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from sgdtemp.files import atomic_write_json

#: Configuration entries that locate inputs rather than define the run.
LOCATION_KEYS = frozenset({"data_dir"})

#: Training options added after results were first committed, with their defaults. An entry
#: holding its default is left out of the key (and of the stored config), so a result
#: computed before the option existed keeps its key; any other value enters the key as usual.
#: ``tests`` check these defaults against ``sgdtemp.train.CONFIG_KEYS``.
KEYED_WHEN_SET: dict[str, Any] = {
    "depth": None,
    "schedule": "constant",
    "cycle_ratio": 5.0,
    "cycle_epochs": 2.0,
    "curvature_frobenius": False,
    "grad_penalty": 0.0,
    "enhance_alpha": 0.0,
    "curvature_batchnorm": "eval",
    "noise_scale_every": 0,
}


class StoreError(RuntimeError):
    """A stored result cannot be read or does not match its configuration."""


# ---------------------------------------------------------------- keys
def _plain(v: Any) -> Any:
    """``v`` with NumPy scalars/arrays and tuples turned into plain JSON values."""
    if hasattr(v, "item") and getattr(v, "shape", None) == ():
        v = v.item()  # numpy scalar
    elif hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"configuration value {v!r} is not finite")
    return v


def _at_default(k: str, v: Any) -> bool:
    if k not in KEYED_WHEN_SET:
        return False
    d = KEYED_WHEN_SET[k]
    return v is None if d is None else (type(v) is type(d) and v == d)


def canonical_config(config: Mapping[str, Any]) -> dict:
    """The configuration as it is keyed and stored: plain JSON values, without
    the location entries of :data:`LOCATION_KEYS` and the later options of
    ``KEYED_WHEN_SET`` that hold their default."""
    return {k: _plain(v) for k, v in config.items()
            if k not in LOCATION_KEYS and not _at_default(k, v)}


def canonical_json(config: Mapping[str, Any]) -> str:
    """Sorted keys, no whitespace, UTF-8: one text per configuration."""
    return json.dumps(canonical_config(config), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False)


def config_key(config: Mapping[str, Any]) -> str:
    """sha256 (hex, 64 characters) of :func:`canonical_json` of ``config``.

    Stable across processes, Python versions and dictionary orders; changes when
    any entry outside :data:`LOCATION_KEYS` changes (``1`` and ``1.0`` differ, so
    normalize types before keying).
    """
    return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- provenance
def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state(cwd: str | os.PathLike | None = None) -> dict:
    """``{"git_commit", "git_dirty"}`` of the repository holding the library
    (``None`` for both outside a repository or before the first commit)."""
    cwd = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def source_hash() -> str:
    """sha256 of the library's Python sources (file names and contents, sorted): names the
    code that computed a result even when the working tree is not committed."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def runtime_provenance() -> dict:
    """Versions and host of the process that ran a job (called where it ran)."""
    import numpy

    import sgdtemp

    torch = sys.modules.get("torch")
    if torch is not None:
        torch_version = torch.__version__
    else:  # the store itself does not need torch: do not pay for importing it
        try:
            from importlib.metadata import version

            torch_version = version("torch")
        except Exception:
            torch_version = None
    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch_version,
        "sgdtemp": sgdtemp.__version__,
        "sgdtemp_source_sha256": source_hash(),
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
    }


def now_utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------- the store
class ResultsStore:
    """A folder of ``<key>.json`` run results (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()

    def __repr__(self) -> str:
        return f"ResultsStore({str(self.root)!r})"

    def path(self, config: Mapping[str, Any]) -> Path:
        return self.root / f"{config_key(config)}.json"

    # -- reading
    def _read(self, path: Path) -> dict:
        try:
            with open(path, encoding="utf-8") as f:
                entry = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StoreError(f"stored result {path} cannot be read ({e}); delete it and "
                             f"rerun the sweep to recompute it.") from None
        if not isinstance(entry, dict) or not {"key", "config", "record"} <= set(entry):
            raise StoreError(f"stored result {path} lacks its key, config or record; delete "
                             f"it and rerun the sweep to recompute it.")
        if entry["key"] != path.stem or config_key(entry["config"]) != path.stem:
            raise StoreError(f"stored result {path} does not match its file name (edited by "
                             f"hand?); delete it and rerun the sweep to recompute it.")
        return entry

    def entry(self, config: Mapping[str, Any]) -> dict | None:
        """The stored ``{"key", "config", "record", "provenance"}``, or None if absent.
        Raises :class:`StoreError` naming the file if it exists but cannot be read."""
        path = self.path(config)
        if not path.exists():
            return None
        return self._read(path)

    def get(self, config: Mapping[str, Any]) -> dict | None:
        """The stored record of ``config``, or None if it has not been computed."""
        entry = self.entry(config)
        return None if entry is None else entry["record"]

    def has(self, config: Mapping[str, Any]) -> bool:
        """True when a readable result of ``config`` is stored."""
        try:
            return self.entry(config) is not None
        except StoreError as e:
            warnings.warn(str(e), stacklevel=2)
            return False

    def __contains__(self, config: Mapping[str, Any]) -> bool:
        return self.has(config)

    def missing(self, configs: Iterable[Mapping[str, Any]]) -> list[dict]:
        """The configurations (duplicates removed, order kept) with no readable result."""
        seen: set[str] = set()
        out = []
        for c in configs:
            k = config_key(c)
            if k in seen:
                continue
            seen.add(k)
            if not self.has(c):
                out.append(dict(c))
        return out

    def keys(self) -> list[str]:
        """Keys of the result files present (temporary files are hidden dot-files)."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.json") if not p.name.startswith("."))

    def __iter__(self) -> Iterator[dict]:
        """Every readable stored entry, in key order; unreadable files are skipped
        with a warning naming them."""
        for k in self.keys():
            try:
                yield self._read(self.root / f"{k}.json")
            except StoreError as e:
                warnings.warn(str(e), stacklevel=2)

    def __len__(self) -> int:
        return len(self.keys())

    # -- writing
    def put(self, config: Mapping[str, Any], record: Mapping[str, Any],
            provenance: Mapping[str, Any] | None = None) -> Path:
        """Store ``record`` under ``config``'s key, atomically; returns the file path.
        Replaces an earlier result of the same configuration."""
        cfg = canonical_config(config)
        key = config_key(cfg)
        entry = {
            "key": key,
            "config": cfg,
            "record": _plain(dict(record)),
            "provenance": _plain(dict(provenance or {})),
        }
        return atomic_write_json(self.root / f"{key}.json", entry)


def provenance(*, wall_time_s: float, seed: Any, device: Any = None,
               runtime: Mapping[str, Any] | None = None,
               git: Mapping[str, Any] | None = None) -> dict:
    """The provenance block stored with a result: git commit and dirtiness, device,
    library versions and host (``runtime``, from where the run executed), wall
    time in seconds, seed and creation time (UTC, ISO 8601)."""
    out = dict(git if git is not None else git_state())
    out.update(runtime if runtime is not None else runtime_provenance())
    out.update({"device": device, "wall_time_s": float(wall_time_s), "seed": seed,
                "created": now_utc()})
    return out


__all__ = ["LOCATION_KEYS", "ResultsStore", "StoreError", "canonical_config", "canonical_json",
           "config_key", "git_state", "provenance", "runtime_provenance"]
