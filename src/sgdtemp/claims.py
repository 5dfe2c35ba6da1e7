"""The claims table that closes every chapter.

A claim is ``{"id", "statement", "predicted", "measured", "tolerance", "holds"}``.
Tolerances come from statistical error (replicas, seeds), never from tuning.

The table is shown as HTML in the notebook and carried, machine-readable, in the
output's metadata under :data:`METADATA_KEY`; ``python -m sgdtemp run`` reads it
from the executed notebook and writes ``claims.json``.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METADATA_KEY = "sgdtemp_claims"


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.ndarray):
        return [_jsonable(x) for x in v.tolist()]
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no inf/nan
    return v


@dataclass(frozen=True)
class Claim:
    id: str
    statement: str
    predicted: Any
    measured: Any
    tolerance: Any
    holds: bool


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


class ClaimsTable:
    """Collects a chapter's claims; ``publish()`` shows and exports them."""

    def __init__(self, chapter: str):
        self.chapter = chapter
        self.claims: list[Claim] = []

    def _add(self, claim: Claim) -> Claim:
        if any(c.id == claim.id for c in self.claims):
            raise ValueError(f"claim id {claim.id!r} is used twice")
        self.claims.append(claim)
        return claim

    def compare(self, id: str, statement: str, predicted: float, measured: float,
                tolerance: float) -> Claim:
        """Numerical claim: holds when |measured − predicted| ≤ tolerance."""
        predicted, measured, tolerance = (float(predicted), float(measured), float(tolerance))
        holds = bool(abs(measured - predicted) <= tolerance)
        return self._add(Claim(id, statement, _jsonable(predicted), _jsonable(measured),
                               _jsonable(tolerance), holds))

    def check(self, id: str, statement: str, predicted: Any, measured: Any,
              tolerance: Any, holds: bool) -> Claim:
        """Any other claim (an order, a sign, a bound); ``holds`` is decided by the caller
        and ``predicted``/``measured``/``tolerance`` say, in numbers or words, why."""
        return self._add(Claim(id, statement, _jsonable(predicted), _jsonable(measured),
                               _jsonable(tolerance), bool(holds)))

    @property
    def all_hold(self) -> bool:
        return all(c.holds for c in self.claims)

    def records(self) -> list[dict]:
        return [asdict(c) for c in self.claims]

    def to_html(self) -> str:
        rows = []
        for c in self.claims:
            mark = "✔ holds" if c.holds else "✘ fails"
            color = "#1b7837" if c.holds else "#b2182b"
            cells = [c.id, c.statement, _fmt(c.predicted), _fmt(c.measured), _fmt(c.tolerance)]
            tds = "".join(f"<td>{html.escape(x)}</td>" for x in cells)
            rows.append(f"<tr>{tds}<td style='color:{color};font-weight:bold'>{mark}</td></tr>")
        head = "".join(f"<th>{h}</th>" for h in
                       ("id", "claim", "predicted", "measured", "tolerance", "verdict"))
        n_ok = sum(c.holds for c in self.claims)
        caption = f"{n_ok} of {len(self.claims)} claims hold"
        return (f"<table class='sgdtemp-claims'><caption>{caption}</caption>"
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def to_text(self) -> str:
        lines = [f"{self.chapter}: {sum(c.holds for c in self.claims)} of "
                 f"{len(self.claims)} claims hold"]
        for c in self.claims:
            lines.append(f"  [{'ok' if c.holds else 'FAIL'}] {c.id}: predicted "
                         f"{_fmt(c.predicted)}, measured {_fmt(c.measured)}, "
                         f"tolerance {_fmt(c.tolerance)}")
        return "\n".join(lines)

    def publish(self) -> None:
        """Display the table; the records travel in the output's metadata."""
        from IPython.display import display

        display({"text/html": self.to_html(), "text/plain": self.to_text()},
                metadata={METADATA_KEY: {"chapter": self.chapter, "claims": self.records()}},
                raw=True)


def claims_from_notebook(nb) -> list[dict] | None:
    """The claims a chapter published, read back from an executed notebook."""
    found = None
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {})
            if METADATA_KEY in meta:
                found = meta[METADATA_KEY]["claims"]
    return found


def dumps(claims: list[dict]) -> str:
    return json.dumps(claims, indent=2, ensure_ascii=False) + "\n"
