"""Run records as arrays, and numbers handed to a chapter's prose.

A chapter holds lists of training records (:func:`sgdtemp.train.run_training`'s output, read
from the results store) and needs per-run numbers from them: a final value, the mean over
the last k epochs, a curvature, a configuration entry. :func:`metric` turns a list of
records into one array (NaN for a diverged run, unless asked otherwise), so no chapter
writes that loop again. :class:`Glue` hands numbers and words to the Markdown with a
chapter prefix, one helper for the whole book.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import numpy as np

from sgdtemp.stats.contrasts import window_mean


def metric(records: Sequence[dict], key: str, *, window: int | None = None,
           diverged: str = "nan") -> np.ndarray:
    """One number per record, as a float array in the records' order.

    ``key``:

    * a curve name (``"test_acc"``, ``"train_loss"``, ``"shifted_test_loss"``, ...): its
      last value, or with ``window`` = k the mean of its last k values
      (:func:`sgdtemp.stats.contrasts.window_mean`; the value the network claims are judged on);
    * ``"config.NAME"``: a configuration entry (``"config.lr"``);
    * ``"curvature.NAME"`` / ``"noise.NAME"``: an end measurement (NaN if absent);
    * ``"noise_scale.NAME"``: the last checkpoint of the gradient noise scale record.

    ``diverged``: "nan" gives NaN for a diverged run's curve values (its curves stop early),
    "keep" gives what was recorded. Units: those of the key (accuracies as fractions)."""
    if diverged not in ("nan", "keep"):
        raise ValueError(f"diverged must be 'nan' or 'keep'; got {diverged!r}.")
    out = []
    for r in records:
        if "." in key:
            part, name = key.split(".", 1)
            src = r.get(part) or {}
            if part == "config":
                src = r["config"]
            v = src.get(name) if isinstance(src, dict) else None
            if isinstance(v, list):
                v = v[-1] if v else None
            out.append(np.nan if v is None else float(v))
            continue
        if r.get("diverged") and diverged == "nan":
            out.append(np.nan)
            continue
        curve = r["curves"][key]
        out.append(window_mean(curve, window) if window else float(curve[-1]))
    return np.asarray(out, dtype=float)


def curves(records: Sequence[dict], key: str) -> np.ndarray:
    """The per-epoch curve ``key`` of every record, stacked (runs × epochs); a shorter
    (diverged) curve is padded with NaN."""
    rows = [np.asarray(r["curves"][key], dtype=float) for r in records]
    n = max(len(c) for c in rows)
    return np.vstack([np.pad(c, (0, n - len(c)), constant_values=np.nan) for c in rows])


def cpu_hours(records_with_provenance: Iterable[dict]) -> float:
    """CPU-hours the stored runs cost, from their provenance: each unit of work's CPU time
    counted once (runs trained together in a group share one ``cpu_time_s``, which is the
    group's; it is divided by the group size)."""
    total = 0.0
    for entry in records_with_provenance:
        prov = entry.get("provenance", {})
        cpu = prov.get("cpu_time_s")
        if cpu is None:
            continue
        total += float(cpu) / max(1, int(prov.get("group_size") or 1))
    return total / 3600.0


class Glue:
    """Hands numbers and words to the chapter's Markdown under ``PREFIX_name``.

    ``glue("n_seeds", 8)`` makes ``{glue:text}`PREFIX_n_seeds``` print 8; floats keep full
    precision for the role's format spec (``{glue:text}`PREFIX_x:.2f```); a string is glued
    as Markdown (cite it with ``{glue:md}`PREFIX_name:myst``` so its math is typeset).
    Integers stay integers (no "8.0")."""

    def __init__(self, prefix: str):
        if not prefix or not prefix.replace("_", "").isalnum():
            raise ValueError(f"prefix must be letters, digits and '_'; got {prefix!r}.")
        self.prefix = prefix

    def __call__(self, name: str, value: Any) -> Any:
        from IPython.display import Markdown
        from myst_nb import glue

        key = f"{self.prefix}_{name}"
        if isinstance(value, str):
            glue(key, Markdown(value), display=False)
        elif isinstance(value, (bool, np.bool_)):
            raise TypeError(f"glue a verdict as a word, not a bool ({key})")
        elif isinstance(value, (int, np.integer)):
            glue(key, int(value), display=False)
        else:
            v = float(value)
            if not np.isfinite(v):
                raise ValueError(f"{key} is {v}: a number the prose cannot use (say what it means "
                                 "in words instead)")
            glue(key, v, display=False)
        return value

    def many(self, **values: Any) -> None:
        for k, v in values.items():
            self(k, v)


def verdict_word(verdict: str) -> str:
    """The verdict as the prose says it: "holds", "fails", or "is unresolved"."""
    return {"holds": "holds", "fails": "fails", "unresolved": "is unresolved"}[verdict]


def apply(records: Sequence[dict], fn: Callable[[dict], float]) -> np.ndarray:
    """``fn`` of every record, as a float array (for anything :func:`metric` does not name)."""
    return np.asarray([fn(r) for r in records], dtype=float)
