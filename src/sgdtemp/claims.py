"""The claims table that closes every chapter.

A claim is ``{"id", "statement", "predicted", "measured", "tolerance", "holds"}`` plus
``kind`` and ``expected_rate`` (how often it should hold if the prediction is right).

The tolerance rule, followed by every chapter:

* A tolerance is ``z`` standard errors of the chapter's *own* independent replicas,
  seeds or subsets (z = 3 for one claim, :func:`sgdtemp.stats.family_z` for a family of
  k claims tested together), plus only systematic terms that are computed independently
  of the measured value and named in the claim's statement. A tolerance is never widened
  until a claim passes, and never includes the distance between the prediction and
  another prediction that the measurement is known to match.
* ``expected_rate`` follows from the tolerance: 2Φ(z) − 1 for a two-sided Gaussian
  comparison (0.9973 at 3 s.e.; a systematic term counted as a bound only raises it),
  the level of a χ² bound, the power of a one-sided test where its effect is predicted,
  and 1 for an exact identity. The claims report (appendix ``claims_report``) compares
  the observed rate over seeds with it.
* A claim that is an exact identity of the implementation (an enumeration against its
  closed form, an algebraic invariance checked to rounding, or a Monte Carlo check of an
  algebraic identity) has ``kind = "identity"``: it is a check of the code, not evidence
  for the theory, and is shown as such. Checked to rounding its expected rate is 1;
  checked by Monte Carlo it is that of its tolerance.
* A claim that fails is shown failing, with its measured reason in the chapter's text.

The table is shown as HTML in the notebook and carried, machine-readable, in the
output's metadata under :data:`METADATA_KEY`; ``python -m sgdtemp run`` reads it
from the executed notebook and writes ``claims.json``.
"""

from __future__ import annotations

import html
import json
import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

#: Where a published claims table carries its records in the notebook output's metadata.
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
    kind: str = "statistical"
    expected_rate: float | None = None

    # A claim left as a cell's last expression shows as a one-line verdict, not a repr.
    def _repr_html_(self) -> str:
        mark = ("<span style='color:#1b7837;font-weight:bold'>✓ holds</span>" if self.holds
                else "<span style='color:#b2182b;font-weight:bold'>✗ fails</span>")
        check = "implementation check: " if self.kind == "identity" else ""
        return (f"<p class='sgdtemp-claim'>{mark}: {check}{statement_html(self.statement)} "
                f"(predicted {html.escape(_fmt(self.predicted))}, measured "
                f"{html.escape(_fmt(self.measured))}, tolerance "
                f"{html.escape(_fmt(self.tolerance))})</p>")

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(f"{'holds' if self.holds else 'FAILS'}: {statement_text(self.statement)} "
                     f"(predicted {_fmt(self.predicted)}, measured {_fmt(self.measured)}, "
                     f"tolerance {_fmt(self.tolerance)})")


#: ``kind`` values: a statistical comparison or decision, or an identity of the code.
KINDS = ("statistical", "identity")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):  # "a: 1, b: 2", not a Python repr
        return ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items())
    return str(v)


# An equation cited in a statement, as in MyST: {eq}`label`. The book's Sphinx extension
# (sgdtemp.book_html) replaces the link text with the equation's number at build time.
_EQ_REF = re.compile(r"\{eq\}`([^`]+)`")


def statement_html(statement: str) -> str:
    """A claim's statement as HTML: escaped, with each equation it cites with MyST's
    ``{eq}`` role turned into a link to ``#equation-LABEL`` that the book build numbers
    (:mod:`sgdtemp.book_html`). In an f-string the role is written ``{{eq}}``."""
    out, pos = [], 0
    for m in _EQ_REF.finditer(statement):
        out.append(html.escape(statement[pos:m.start()]))
        label = m.group(1)
        out.append(f"<a class='sgdtemp-eqref' data-label='{html.escape(label)}' "
                   f"href='#equation-{html.escape(label)}'>({html.escape(label)})</a>")
        pos = m.end()
    out.append(html.escape(statement[pos:]))
    return "".join(out)


def statement_text(statement: str) -> str:
    """A claim's statement as plain text: an equation cited with the ``{eq}`` role
    becomes its label, prefixed with "eq"."""
    return _EQ_REF.sub(lambda m: f"eq. {m.group(1)}", statement)


def claims_html(claims: list[dict], chapter: str | None = None,
                caption: str | None = None) -> str:
    """A claims table for the page, read verdict first.

    Columns: a coloured ✓/✗, the statement (its id in small type beneath it), then
    predicted, measured and tolerance. Rows carry ``id='claim-CHAPTER-ID'`` so other
    pages can link to a claim. The layout (widths, wrapping, colours) lives in the book's
    stylesheet ``_static/sgdtemp.css`` under ``table.sgdtemp-claims``; the inline colour
    only keeps the verdict readable where that stylesheet is absent (e.g. in Jupyter).
    """
    rows = []
    for c in claims:
        holds = bool(c["holds"])
        verdict = ("<td class='verdict holds' title='holds' style='color:#1b7837'>"
                   "✓<span class='visually-hidden'> holds</span></td>" if holds else
                   "<td class='verdict fails' title='fails' style='color:#b2182b'>"
                   "✗<span class='visually-hidden'> fails</span></td>")
        row_id = f"claim-{chapter}-{c['id']}" if chapter else f"claim-{c['id']}"
        check = ("<span class='claim-kind'>implementation check:</span> "
                 if c.get("kind") == "identity" else "")
        statement = (f"<td class='statement'>{check}{statement_html(str(c['statement']))}"
                     f"<div class='claim-id'>{html.escape(str(c['id']))}</div></td>")
        values = "".join(f"<td class='value'>{html.escape(_fmt(c[k]))}</td>"
                         for k in ("predicted", "measured", "tolerance"))
        rows.append(f"<tr id='{html.escape(_anchor(row_id))}'>{verdict}{statement}{values}</tr>")
    head = ("<th class='verdict' title='verdict'>✓/✗</th><th class='statement'>claim</th>"
            "<th class='value'>predicted</th><th class='value'>measured</th>"
            "<th class='value'>tolerance</th>")
    n_ok = sum(bool(c["holds"]) for c in claims)
    if caption is None:
        caption = f"{n_ok} of {len(claims)} claims hold"
    return (f"<div class='sgdtemp-claims-wrap'><table class='sgdtemp-claims'>"
            f"<caption>{html.escape(caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def _anchor(text: str) -> str:
    """An HTML id made of letters, digits, '-' and '_' (other characters become '-')."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)


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
                tolerance: float, *, expected_rate: float | None = None,
                kind: str = "statistical") -> Claim:
        """Numerical claim: holds when ``|measured − predicted| ≤ tolerance``."""
        predicted, measured, tolerance = (float(predicted), float(measured), float(tolerance))
        holds = bool(abs(measured - predicted) <= tolerance)
        return self._add(self._claim(id, statement, predicted, measured, tolerance, holds,
                                     kind, expected_rate))

    def compare_se(self, id: str, statement: str, predicted: float, measured: float,
                   se: float, *, z: float = 3.0, systematic: float = 0.0,
                   kind: str = "statistical") -> Claim:
        """Statistical claim by the rule: holds when ``|measured − predicted| ≤ z·se +
        systematic``, with ``se`` the standard error of ``measured − predicted`` from the
        chapter's own replicas and ``systematic`` ≥ 0 a bound computed without the
        measurement (say in the statement what it is). Expected rate 2Φ(z) − 1.
        ``kind="identity"`` for a Monte Carlo check of an exact identity of the code."""
        from sgdtemp.stats import two_sided_rate

        if not systematic >= 0:
            raise ValueError(f"systematic must be a non-negative bound; got {systematic!r}")
        return self.compare(id, statement, predicted, measured, z * float(se) + systematic,
                            expected_rate=two_sided_rate(z), kind=kind)

    def check_identity(self, id: str, statement: str, predicted: float, measured: float,
                       tolerance: float) -> Claim:
        """An exact identity of the implementation, checked to rounding (``tolerance``):
        labelled a check of the code, not evidence; expected to hold always."""
        return self.compare(id, statement, predicted, measured, tolerance,
                            expected_rate=1.0, kind="identity")

    def check(self, id: str, statement: str, predicted: Any, measured: Any,
              tolerance: Any, holds: bool, *, expected_rate: float | None = None,
              kind: str = "statistical") -> Claim:
        """Any other claim (an order, a sign, a bound); ``holds`` is decided by the caller
        and ``predicted``/``measured``/``tolerance`` say, in numbers or words, why.
        ``expected_rate``: how often it holds if the prediction is right (None: not
        stated, e.g. a one-sided test whose effect size is not predicted)."""
        return self._add(self._claim(id, statement, predicted, measured, tolerance, holds,
                                     kind, expected_rate))

    @staticmethod
    def _claim(id, statement, predicted, measured, tolerance, holds, kind, expected_rate):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if expected_rate is not None and not 0.0 <= float(expected_rate) <= 1.0:
            raise ValueError(f"expected_rate must lie in [0, 1]; got {expected_rate!r}")
        return Claim(id, statement, _jsonable(predicted), _jsonable(measured),
                     _jsonable(tolerance), bool(holds), kind,
                     None if expected_rate is None else float(expected_rate))

    @property
    def all_hold(self) -> bool:
        return all(c.holds for c in self.claims)

    def records(self) -> list[dict]:
        return [asdict(c) for c in self.claims]

    def to_html(self) -> str:
        return claims_html(self.records(), chapter=self.chapter)

    def to_text(self) -> str:
        lines = [f"{self.chapter}: {sum(c.holds for c in self.claims)} of "
                 f"{len(self.claims)} claims hold"]
        for c in self.claims:
            lines.append(f"  [{'ok' if c.holds else 'FAIL'}] {c.id}"
                         f"{' (implementation check)' if c.kind == 'identity' else ''}: predicted "
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
