"""The claims table that closes every chapter.

A claim is ``{"id", "statement", "predicted", "measured", "tolerance", "holds", "verdict",
"detectable", "margin"}`` plus ``kind`` and ``expected_rate`` (how often it should hold if
the prediction is right). ``verdict`` is ``holds``, ``fails`` or ``unresolved`` (the test,
on the data it has, could not have detected the predicted effect, or the departure that
would refute an agreement claim, with 80% power); ``holds`` is true only for ``holds``.
``detectable`` is the 80%-power detectable difference of a statistical claim (in the
claim's units), ``margin`` the equivalence margin of an agreement claim
(:mod:`sgdtemp.stats.decisions` states the rule).

The tolerance rule, followed by every chapter:

* A tolerance is ``z`` standard errors of the chapter's *own* independent replicas,
  seeds or subsets (z = 3 for one claim, :func:`sgdtemp.stats.basic.family_z` for a family of
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
    verdict: str = ""
    detectable: float | None = None
    margin: float | None = None

    # A claim left as a cell's last expression shows as a one-line verdict, not a repr.
    def _repr_html_(self) -> str:
        mark = (f"<span style='color:{VERDICT_COLOURS[self.verdict]};font-weight:bold'>"
                f"{VERDICT_MARKS[self.verdict]} {self.verdict}</span>")
        check = KIND_LABELS.get(self.kind, "")
        return (f"<p class='sgdtemp-claim'>{mark}: {check}{statement_html(self.statement)} "
                f"(predicted {html.escape(_fmt(self.predicted))}, measured "
                f"{html.escape(_fmt(self.measured))}, tolerance "
                f"{html.escape(_fmt(self.tolerance))})</p>")

    def _repr_pretty_(self, printer, cycle: bool) -> None:
        printer.text(f"{self.verdict.upper() if self.verdict != 'holds' else 'holds'}: "
                     f"{statement_text(self.statement)} "
                     f"(predicted {_fmt(self.predicted)}, measured {_fmt(self.measured)}, "
                     f"tolerance {_fmt(self.tolerance)})")


#: ``kind`` values: a statistical comparison or decision; an identity of the code checked to
#: rounding; a Monte Carlo check of an identity of the code (with a statistical tolerance).
KINDS = ("statistical", "identity", "monte_carlo_check")
#: How a kind is introduced in tables (statistical claims need no label).
KIND_LABELS = {"identity": "implementation check: ",
               "monte_carlo_check": "Monte Carlo check of the implementation: "}
VERDICT_MARKS = {"holds": "✓", "fails": "✗", "unresolved": "?"}
VERDICT_COLOURS = {"holds": "#1b7837", "fails": "#b2182b", "unresolved": "#b35806"}


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
        v = verdict_of(c)
        verdict = (f"<td class='verdict {v}' title='{v}' style='color:{VERDICT_COLOURS[v]}'>"
                   f"{VERDICT_MARKS[v]}<span class='visually-hidden'> {v}</span></td>")
        row_id = f"claim-{chapter}-{c['id']}" if chapter else f"claim-{c['id']}"
        label = KIND_LABELS.get(c.get("kind"), "")
        check = f"<span class='claim-kind'>{html.escape(label)}</span>" if label else ""
        statement = (f"<td class='statement'>{check}{statement_html(str(c['statement']))}"
                     f"<div class='claim-id'>{html.escape(str(c['id']))}</div></td>")
        values = "".join(f"<td class='value'>{html.escape(_fmt(c.get(k)))}</td>"
                         for k in ("predicted", "measured", "tolerance"))
        power = c.get("detectable")
        margin = c.get("margin")
        extra = "" if power is None else _fmt(power)
        if margin is not None:
            extra += f" (margin {_fmt(margin)})"
        values += f"<td class='value'>{html.escape(extra)}</td>"
        rows.append(f"<tr id='{html.escape(_anchor(row_id))}'>{verdict}{statement}{values}</tr>")
    head = ("<th class='verdict' title='verdict'>✓ ✗ ?</th><th class='statement'>claim</th>"
            "<th class='value'>predicted</th><th class='value'>measured</th>"
            "<th class='value'>tolerance</th>"
            "<th class='value' title='80%-power detectable difference'>detectable</th>")
    if caption is None:
        caption = verdict_summary(claims)
    return (f"<div class='sgdtemp-claims-wrap'><table class='sgdtemp-claims'>"
            f"<caption>{html.escape(caption)}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def verdict_of(claim: dict) -> str:
    """A claim record's verdict (records written before verdicts existed: from ``holds``)."""
    v = claim.get("verdict") or ("holds" if claim.get("holds") else "fails")
    if v not in VERDICT_MARKS:
        raise ValueError(f"verdict must be one of {', '.join(VERDICT_MARKS)}; got {v!r}")
    return v


def verdict_counts(claims: list[dict]) -> dict[str, int]:
    """How many claims hold, fail and are unresolved."""
    out = {v: 0 for v in VERDICT_MARKS}
    for c in claims:
        out[verdict_of(c)] += 1
    return out


def verdict_summary(claims: list[dict]) -> str:
    """"N claims: a hold, b fail, c unresolved" (parts that are 0 left out, but never all)."""
    n = verdict_counts(claims)
    parts = [f"{n['holds']} hold"] + [f"{n[k]} {w}" for k, w in (("fails", "fail"),
                                                                  ("unresolved", "unresolved"))
                                      if n[k]]
    return f"{len(claims)} claims: " + ", ".join(parts)


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
                kind: str = "statistical", detectable: float | None = None) -> Claim:
        """Numerical claim: holds when ``|measured − predicted| ≤ tolerance``, else fails
        (a consistency test of a computed prediction: no margin, two verdicts)."""
        predicted, measured, tolerance = (float(predicted), float(measured), float(tolerance))
        holds = bool(abs(measured - predicted) <= tolerance)
        return self._add(self._claim(id, statement, predicted, measured, tolerance, holds,
                                     kind, expected_rate, detectable=detectable))

    def compare_se(self, id: str, statement: str, predicted: float, measured: float,
                   se: float, *, z: float = 3.0, systematic: float = 0.0,
                   kind: str = "statistical") -> Claim:
        """Statistical claim by the rule: holds when ``|measured − predicted| ≤ z·se +
        systematic``, with ``se`` the standard error of ``measured − predicted`` from the
        chapter's own replicas and ``systematic`` ≥ 0 a bound computed without the
        measurement (say in the statement what it is). Expected rate 2Φ(z) − 1.
        ``kind="identity"`` for a Monte Carlo check of an exact identity of the code."""
        from sgdtemp.stats import two_sided_rate

        from sgdtemp.stats import detectable_difference

        if not systematic >= 0:
            raise ValueError(f"systematic must be a non-negative bound; got {systematic!r}")
        return self.compare(id, statement, predicted, measured, z * float(se) + systematic,
                            expected_rate=two_sided_rate(z), kind=kind,
                            detectable=detectable_difference(float(se), None, z) + systematic)

    def check_identity(self, id: str, statement: str, predicted: float, measured: float,
                       tolerance: float) -> Claim:
        """An exact identity of the implementation, checked to rounding (``tolerance``):
        labelled a check of the code, not evidence; expected to hold always."""
        return self.compare(id, statement, predicted, measured, tolerance,
                            expected_rate=1.0, kind="identity")

    def check(self, id: str, statement: str, predicted: Any, measured: Any,
              tolerance: Any, holds: bool | None = None, *, verdict: str | None = None,
              expected_rate: float | None = None, kind: str = "statistical",
              detectable: float | None = None, margin: float | None = None) -> Claim:
        """Any other claim (an order, a sign, a bound, a count); the caller decides it —
        ``holds`` (two verdicts) or ``verdict`` (``holds``, ``fails`` or ``unresolved``) —
        and ``predicted``/``measured``/``tolerance`` say, in numbers or words, why.
        ``expected_rate``: how often it holds if the prediction is right (None: not
        stated, e.g. a one-sided test whose effect size is not predicted)."""
        if (holds is None) == (verdict is None):
            raise ValueError("give exactly one of holds and verdict")
        if verdict is None:
            verdict = "holds" if holds else "fails"
        return self._add(self._claim(id, statement, predicted, measured, tolerance,
                                     verdict == "holds", kind, expected_rate, verdict=verdict,
                                     detectable=detectable, margin=margin))

    def agree(self, id: str, statement: str, decision, *, predicted: float = 0.0) -> Claim:
        """An agreement claim judged by :func:`sgdtemp.stats.decisions.equivalence`: ``decision``
        carries the estimate (measured, as a departure from ``predicted``), its interval
        half-width t·se (tolerance), the margin and the detectable difference."""
        if decision.kind != "agreement":
            raise ValueError(f"agree takes an equivalence decision; got a {decision.kind} one")
        return self._add(self._claim(
            id, statement, float(predicted), float(predicted) + decision.estimate,
            decision.threshold * decision.se, decision.holds, "statistical", None,
            verdict=decision.verdict, detectable=decision.detectable, margin=decision.margin))

    def direction(self, id: str, statement: str, decision) -> Claim:
        """A directional claim judged by :func:`sgdtemp.stats.decisions.directional`: predicted is the
        signed effect size stated beforehand, measured the estimate, tolerance t·se."""
        if decision.kind != "directional":
            raise ValueError(f"direction takes a directional decision; got a {decision.kind} one")
        return self._add(self._claim(
            id, statement, decision.sign * decision.effect, decision.estimate,
            decision.threshold * decision.se, decision.holds, "statistical", None,
            verdict=decision.verdict, detectable=decision.detectable))

    @staticmethod
    def _claim(id, statement, predicted, measured, tolerance, holds, kind, expected_rate,
               verdict=None, detectable=None, margin=None):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if expected_rate is not None and not 0.0 <= float(expected_rate) <= 1.0:
            raise ValueError(f"expected_rate must lie in [0, 1]; got {expected_rate!r}")
        verdict = verdict or ("holds" if holds else "fails")
        if verdict not in VERDICT_MARKS:
            raise ValueError(f"verdict must be one of {', '.join(VERDICT_MARKS)}; got {verdict!r}")
        if bool(holds) != (verdict == "holds"):
            raise ValueError(f"holds={holds!r} contradicts verdict {verdict!r}")
        return Claim(id, statement, _jsonable(predicted), _jsonable(measured),
                     _jsonable(tolerance), bool(holds), kind,
                     None if expected_rate is None else float(expected_rate), verdict,
                     None if detectable is None else _jsonable(float(detectable)),
                     None if margin is None else _jsonable(float(margin)))

    @property
    def all_hold(self) -> bool:
        return all(c.holds for c in self.claims)

    @property
    def none_fail(self) -> bool:
        return all(c.verdict != "fails" for c in self.claims)

    def records(self) -> list[dict]:
        return [asdict(c) for c in self.claims]

    def to_html(self) -> str:
        return claims_html(self.records(), chapter=self.chapter)

    def to_text(self) -> str:
        lines = [f"{self.chapter}: {verdict_summary(self.records())}"]
        tags = {"holds": "ok", "fails": "FAIL", "unresolved": "??"}
        for c in self.claims:
            lines.append(f"  [{tags[c.verdict]}] {c.id}"
                         f"{' (' + KIND_LABELS[c.kind].rstrip(': ') + ')' if c.kind in KIND_LABELS else ''}: predicted "
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
