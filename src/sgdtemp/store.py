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

The provenance names the code that computed a result (:func:`code_state`, taken where and
when the run starts): the commit, the sha256 of the library's sources
(:func:`source_hash`), and ``git_dirty``, which is False only when those sources are
exactly the commit's tracked ones (:func:`commit_source_hash`, read from git) and are the
ones the computing process loaded. :func:`provenance` refuses any other claim of a clean
tree.

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
from pathlib import Path, PurePosixPath
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
    "record_weight_norms": False,
    "shift_strength": 1.0,
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
#: The library's folder, whose Python sources are what :func:`source_hash` hashes and
#: what a run's provenance names. (Tests point it at a package in a temporary repository.)
LIBRARY = Path(__file__).resolve().parent


def _git(*args: str, cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _git_bytes(*args: str, cwd: Path, stdin: bytes | None = None) -> bytes | None:
    """``git args`` run in ``cwd``: its raw standard output, or None when git fails."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, input=stdin,
                             timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state(cwd: str | os.PathLike | None = None) -> dict:
    """``{"git_commit", "git_dirty"}`` of the repository holding the library
    (``None`` for both outside a repository or before the first commit), as git reports
    them: tracked files only. :func:`code_state` is what a run records."""
    cwd = Path(cwd) if cwd is not None else LIBRARY
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit is None:
        return {"git_commit": None, "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd)
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def _digest(files: Iterable[tuple[str, bytes]]) -> str:
    """sha256 of ``(path relative to the library, contents)`` pairs in path order (compared
    part by part, as sorted ``Path`` objects are): the one definition of a source hash, for
    files on disk and files in a commit alike."""
    h = hashlib.sha256()
    for rel, data in sorted(files, key=lambda f: PurePosixPath(f[0]).parts):
        h.update(rel.encode() + b"\0" + data + b"\0")
    return h.hexdigest()


def source_hash(library: str | os.PathLike | None = None) -> str:
    """sha256 of the library's Python sources on disk (every ``*.py`` below
    :data:`LIBRARY`, tracked or not: an untracked module is imported all the same; file
    names and contents, sorted): names the code that computed a result even when the working
    tree is not committed. :func:`commit_source_hash` gives a commit's."""
    root = Path(library) if library is not None else LIBRARY
    return _digest((p.relative_to(root).as_posix(), p.read_bytes())
                   for p in root.rglob("*.py") if p.is_file())


def _repository(library: Path) -> tuple[Path, str] | None:
    """(top folder of the git repository holding ``library``, the library's path in it with
    a trailing "/", "" at the top), or None outside a repository or without git."""
    top = _git("rev-parse", "--show-toplevel", cwd=library)
    prefix = _git("rev-parse", "--show-prefix", cwd=library)
    return None if top is None or prefix is None else (Path(top), prefix)


def _blobs(top: Path, shas: list[str]) -> dict[str, bytes] | None:
    """The contents of git objects ``shas`` (``git cat-file --batch``: one call for all)."""
    todo = list(dict.fromkeys(shas))
    if not todo:
        return {}
    out = _git_bytes("cat-file", "--batch", cwd=top,
                     stdin="".join(s + "\n" for s in todo).encode())
    if out is None:
        return None
    blobs, i = {}, 0
    for sha in todo:  # each answer: "<sha> <type> <size>\n<contents>\n"
        nl = out.find(b"\n", i)
        header = out[i:nl].split()
        if nl < 0 or len(header) != 3:  # "<sha> missing"
            return None
        size = int(header[2])
        blobs[sha] = out[nl + 1:nl + 1 + size]
        i = nl + 1 + size + 1
    return blobs


#: commit_source_hash's answers: a commit's sources never change.
_COMMIT_HASHES: dict[tuple[str, str, str], str] = {}


def commit_source_hash(commit: str | None, library: str | os.PathLike | None = None) -> str | None:
    """The :func:`source_hash` that the library's tracked sources have at ``commit`` (any
    name git resolves): read from git (``git ls-tree``, then the files' contents) and hashed
    as the files on disk are. None when git, the repository or the commit is not available
    here."""
    lib = Path(library) if library is not None else LIBRARY
    where = _repository(lib) if commit else None
    if where is None:
        return None
    top, prefix = where
    full = _git("rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}", cwd=top)
    if full is None:
        return None
    cache_key = (str(top), full, prefix)
    if cache_key in _COMMIT_HASHES:
        return _COMMIT_HASHES[cache_key]
    listing = _git_bytes("ls-tree", "-r", "-z", "--full-name", full, "--", prefix or ".",
                         cwd=top)
    if listing is None:
        return None
    files = []
    for item in filter(None, listing.split(b"\0")):
        meta, path = item.split(b"\t", 1)
        mode, kind, sha = meta.split()
        name = path.decode("utf-8", "surrogateescape")
        # Regular files only, as source_hash reads them (no symlinks, no submodules).
        if kind == b"blob" and mode != b"120000" and name.endswith(".py"):
            files.append((name[len(prefix):], sha.decode()))
    blobs = _blobs(top, [sha for _, sha in files])
    if blobs is None:
        return None
    _COMMIT_HASHES[cache_key] = _digest((rel, blobs[sha]) for rel, sha in files)
    return _COMMIT_HASHES[cache_key]


def library_commits(library: str | os.PathLike | None = None) -> list[str]:
    """Every commit in the history of HEAD that changed the library's folder (``git log
    --full-history -- <library>``, full hashes, newest first); [] without git."""
    lib = Path(library) if library is not None else LIBRARY
    where = _repository(lib)
    if where is None:
        return []
    top, prefix = where
    out = _git("log", "--full-history", "--format=%H", "--", prefix or ".", cwd=top)
    return out.split() if out else []


#: The source hash each library folder had when this process first looked (the real
#: library's: when this module was imported, before the process computed anything).
_LOADED: dict[str, str] = {}


def loaded_source_hash(library: str | os.PathLike | None = None) -> str:
    """The :func:`source_hash` of the library as this process loaded it: taken when
    ``sgdtemp.store`` was first imported (for another ``library``: when first asked). A
    long-lived process (a pool or Dask worker, a notebook kernel) keeps running the modules
    it imported after the files on disk change."""
    lib = Path(library) if library is not None else LIBRARY
    return _LOADED.setdefault(str(lib), source_hash(lib))


def code_state(library: str | os.PathLike | None = None) -> dict:
    """The code that is about to compute a run, taken when it starts: ``git_commit``,
    ``git_dirty``, ``sgdtemp_source_sha256`` (:func:`source_hash` now) and, when the clean
    tree git reports is not what runs, ``provenance_note`` saying why.

    ``git_dirty`` is False only when the library's sources hash to the commit's tracked
    sources (:func:`commit_source_hash`) and this process runs those sources (it loaded
    them: :func:`loaded_source_hash`). git's own status misses both an untracked module and
    a worker that imported the library before a commit changed the files. True: the code is
    known to differ from the commit's; None: it could not be checked (no git, a commit git
    cannot read). Returns a new dict.
    """
    lib = Path(library) if library is not None else LIBRARY
    loaded = loaded_source_hash(lib)
    src = source_hash(lib)
    out = {**git_state(lib), "sgdtemp_source_sha256": src}
    if loaded != src:
        out["sgdtemp_loaded_source_sha256"] = loaded
        out["git_dirty"] = True
        out["provenance_note"] = (f"the library's sources changed on disk after this process "
                                  f"loaded them (loaded {loaded[:12]}, on disk {src[:12]})")
    return vet_clean_claim(out, lib)


def code_state_after(code: Mapping[str, Any], library: str | os.PathLike | None = None) -> dict:
    """``code`` (:func:`code_state` at a run's start) checked again at its end: a module the
    run imported lazily came from the disk as it was then, so sources that changed during the
    run make ``git_dirty`` True. Returns a new dict."""
    out = dict(code)
    now = source_hash(library)
    if now != out.get("sgdtemp_source_sha256"):
        out["git_dirty"] = True
        out["sgdtemp_source_sha256_at_end"] = now
        note = (f"the library's sources changed on disk while the run computed "
                f"(at its end {now[:12]})")
        out["provenance_note"] = "; ".join(filter(None, [out.get("provenance_note"), note]))
    return out


def vet_clean_claim(prov: Mapping[str, Any], library: str | os.PathLike | None = None) -> dict:
    """``prov`` with ``git_dirty: False`` kept only when its ``sgdtemp_source_sha256`` is
    the hash of its ``git_commit``'s tracked library sources: otherwise ``git_dirty``
    becomes True (the sources differ from the commit's) or None (the commit's sources cannot
    be read here) and ``provenance_note`` says why. Other values pass unchanged. Returns a
    new dict."""
    out = dict(prov)
    if out.get("git_dirty") is not False:
        return out
    commit = out.get("git_commit")
    committed = commit_source_hash(commit, library)
    if committed is not None and committed == out.get("sgdtemp_source_sha256"):
        return out
    if committed is None:
        out["git_dirty"] = None
        note = (f"git reported a clean tree at {str(commit)[:10]}, but that commit's library "
                f"sources could not be read here to confirm it")
    else:
        out["git_dirty"] = True
        note = (f"git reported a clean tree at {str(commit)[:10]}, but the library sources "
                f"do not hash to that commit's (an untracked or hidden change)")
    out["provenance_note"] = "; ".join(filter(None, [out.get("provenance_note"), note]))
    return out


def _cpu_model() -> str | None:
    """The processor's model name (rounding, and so a run's last digits, depends on it)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def runtime_provenance() -> dict:
    """Versions and host of the process that ran a job (called where it ran): Python,
    NumPy, torch and sgdtemp versions, host name, platform and CPU model. The code itself
    is :func:`code_state`'s."""
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
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
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
               code: Mapping[str, Any] | None = None) -> dict:
    """The provenance block stored with a result: the code that computed it (``code``:
    :func:`code_state` taken where and when the run started; default: this process, now),
    device, library versions and host (``runtime``, from where the run executed), wall time
    in seconds, seed and creation time (UTC, ISO 8601).

    A claim of a clean tree (``git_dirty: False``) is stored only if the source hash is the
    commit's (:func:`vet_clean_claim`); else it is stored as True or None with a note.
    """
    out = dict(runtime if runtime is not None else runtime_provenance())
    out.update(code if code is not None else code_state())
    out = vet_clean_claim(out)
    out.update({"device": device, "wall_time_s": float(wall_time_s), "seed": seed,
                "created": now_utc()})
    return out


# The library as this process loaded it (see loaded_source_hash).
loaded_source_hash()

__all__ = ["LIBRARY", "LOCATION_KEYS", "ResultsStore", "StoreError", "canonical_config",
           "canonical_json", "code_state", "code_state_after", "commit_source_hash",
           "config_key", "git_state", "library_commits", "loaded_source_hash", "provenance",
           "runtime_provenance", "source_hash", "vet_clean_claim"]
