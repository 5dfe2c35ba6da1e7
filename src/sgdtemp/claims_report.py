"""The claims report: every chapter's claims over many seeds, against their expected rates.

Each toy chapter is run at one fidelity (``default``) for several seeds *through the
command line* (``python -m sgdtemp run CH --fidelity default -p seed S --out DIR``), and
its ``claims.json`` is stored with provenance as ``results/claims_report/<chapter>/seed<S>.json``.
Like the results store, a computation only runs the (chapter, seed) pairs that are missing,
so an interrupted report resumes. Network chapters read committed sweeps whose seeds are
inside them: they are run once, at default, into ``<chapter>/reference.json``.

Per claim, the report counts how often it held and compares that with its expected rate
(``expected_rate`` in the claim, see :mod:`sgdtemp.claims`): a claim is flagged when the
one-sided binomial probability of holding so rarely, P(X ≤ n_hold | n, rate), is below
``FLAG_P``.

One command recomputes everything missing::

    python -m sgdtemp claims-report --seeds 10 11 12 13 14
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sgdtemp.chapters import available_chapters, repo_root
from sgdtemp.files import atomic_write_json
from sgdtemp.params import ParameterError
from sgdtemp.stats import binomial_below

#: Chapters run over seeds (seconds to minutes of CPU each at default).
TOY_CHAPTERS = ("intro", "fokker_planck", "two_minima", "implicit_regularization",
                "bayesian_evidence", "power_law", "noise_enhancement")
#: Chapters without claims of their own about SGD.
APPENDIX_CHAPTERS = ("reproducing", "claims_report")
#: A claim is flagged when P(held this rarely | its expected rate) is below this. With about
#: a hundred claims, 5% would flag one or two claims per report by chance alone.
FLAG_P = 0.01
#: Claims of a toy chapter that judge its committed network runs ("On a network" sections).
#: Those runs take their seeds from the chapter's ``net_seed``, not from ``seed``, so these
#: claims are the same at every seed of the report: verdicts at the reference scale, not rates.
NETWORK_CLAIM_PREFIX = "net_"
#: Seeds the report uses by default (the tests use 0 and 1; these are unseen by them).
DEFAULT_SEEDS = (10, 11, 12, 13, 14)


def results_dir() -> Path:
    return repo_root() / "results" / "claims_report"


def toy_chapters() -> list[str]:
    return [c for c in available_chapters() if c in TOY_CHAPTERS]


def network_chapters() -> list[str]:
    """Every available chapter of the book that is neither a toy chapter nor an appendix:
    a network chapter added to CHAPTER_ORDER is picked up without editing this module."""
    return [c for c in available_chapters()
            if c not in TOY_CHAPTERS and c not in APPENDIX_CHAPTERS]


def run_path(chapter: str, seed: int | None) -> Path:
    name = "reference.json" if seed is None else f"seed{seed}.json"
    return results_dir() / chapter / name


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_one(chapter: str, seed: int | None, fidelity: str = "default") -> Path:
    """Run one chapter through the CLI and store its claims with provenance.

    ``seed`` None runs the chapter with its own seed (network chapters). Raises
    RuntimeError with the CLI's message if the chapter fails; nothing is written then.
    """
    cmd = [sys.executable, "-m", "sgdtemp", "run", chapter, "--fidelity", fidelity,
           "--no-progress"]
    if seed is not None:
        cmd += ["-p", "seed", str(seed)]
    with tempfile.TemporaryDirectory(prefix="sgdtemp-report-") as tmp:
        started = time.perf_counter()
        r = subprocess.run(cmd + ["--out", tmp], capture_output=True, text=True,
                           cwd=repo_root())
        wall = time.perf_counter() - started
        claims_file = Path(tmp) / "claims.json"
        if r.returncode != 0 or not claims_file.exists():
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"{chapter} (seed {seed}) failed: {tail[0]}")
        claims = json.loads(claims_file.read_text())
    record = {
        "chapter": chapter, "seed": seed, "fidelity": fidelity,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "book", "src")),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(wall, 1), "command": " ".join(cmd[1:] + ["--out", "DIR"]),
        "claims": claims,
    }
    return atomic_write_json(run_path(chapter, seed), record)


def missing(seeds, chapters=None) -> list[tuple[str, int | None]]:
    """The (chapter, seed) pairs not yet stored (network chapters: seed None)."""
    toy = toy_chapters() if chapters is None else [c for c in chapters if c in TOY_CHAPTERS]
    net = network_chapters() if chapters is None else [c for c in chapters
                                                       if c in network_chapters()]
    todo = [(c, s) for c in toy for s in seeds if not run_path(c, s).exists()]
    return todo + [(c, None) for c in net if not run_path(c, None).exists()]


def compute(seeds=DEFAULT_SEEDS, chapters=None, fidelity: str = "default",
            log=print) -> list[Path]:
    """Run every missing (chapter, seed) pair, one at a time; return the files written."""
    seeds = [int(s) for s in seeds]
    if chapters is not None:
        unknown = [c for c in chapters if c not in toy_chapters() + network_chapters()]
        if unknown:
            raise ParameterError(
                f"chapters must be among {', '.join(toy_chapters() + network_chapters())}; "
                f"got {', '.join(unknown)}.")
    written, failures = [], []
    todo = missing(seeds, chapters)
    for i, (c, s) in enumerate(todo, 1):
        log(f"[{i}/{len(todo)}] {c} seed {s if s is not None else '(reference)'}")
        try:
            written.append(run_one(c, s, fidelity))
        except RuntimeError as e:  # keep going: the other pairs are independent
            log(f"  {e}")
            failures.append(str(e))
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(todo)} runs failed; first: {failures[0]}")
    return written


# ------------------------------------------------------------------ reading back


def kind_of(claim: dict) -> str:
    """A claim record's kind: ``statistical``, ``identity`` (an identity of the code checked
    to rounding) or ``monte_carlo_check`` (an identity of the code checked by Monte Carlo,
    with a statistical tolerance). Records written before the third kind existed called a
    Monte Carlo check an ``identity`` with an expected rate below 1: read as what they are."""
    kind = claim.get("kind") or "statistical"
    rate = claim.get("expected_rate")
    if kind == "identity" and rate is not None and float(rate) < 1.0:
        return "monte_carlo_check"
    return kind


@dataclass
class ClaimRate:
    """One claim of one toy chapter over its stored seeds."""

    chapter: str
    id: str
    kind: str
    n: int
    n_hold: int
    expected_rate: float | None
    failed_seeds: list
    #: the statement of the latest stored run (the seed with the highest number)
    statement: str = ""
    #: (seed, verdict) per stored run, in seed order
    verdicts: list = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.n_hold / self.n

    @property
    def n_fail(self) -> int:
        """Runs whose verdict was ``fails`` (an unresolved run is not a failure)."""
        return len(self.failed_seeds)

    @property
    def p_value(self) -> float | None:
        """The one-sided binomial p-value of failing this often at the expected rate,
        P(X ≤ n − n_fail) for X ~ Binomial(n, rate) the runs that do not fail (None without
        a rate)."""
        if self.expected_rate is None:
            return None
        return binomial_below(self.n - self.n_fail, self.n, self.expected_rate)

    def flagged(self, flag_p: float = FLAG_P) -> bool:
        """Held significantly less often than expected: binomial p-value below ``flag_p``."""
        p = self.p_value
        return p is not None and p < flag_p


def load_runs(chapter: str) -> list[dict]:
    """Every stored seed run of a chapter, in seed order."""
    d = results_dir() / chapter
    runs = [json.loads(p.read_text()) for p in d.glob("seed*.json")]
    return sorted(runs, key=lambda r: r["seed"])


def load_reference(chapter: str) -> dict | None:
    p = run_path(chapter, None)
    return json.loads(p.read_text()) if p.exists() else None


def network_verdicts(chapter: str) -> list[dict] | None:
    """The chapter's claims at the reference scale: all claims of a network chapter's
    reference run; a toy chapter's ``net_`` claims, from its stored run with the highest
    seed (every seed reads the same committed network runs). None when nothing is stored."""
    if chapter not in TOY_CHAPTERS:
        ref = load_reference(chapter)
        return None if ref is None else ref["claims"]
    runs = load_runs(chapter)
    if not runs:
        return None
    return [c for c in runs[-1]["claims"] if c["id"].startswith(NETWORK_CLAIM_PREFIX)]


def claim_rates(chapter: str) -> list[ClaimRate]:
    """Per claim id (in the chapter's order): how often it held over the stored seeds, and
    its expected rate (the mean of the runs' stated rates; None if none states one)."""
    order, table = [], {}
    for run in load_runs(chapter):
        for c in run["claims"]:
            if c["id"].startswith(NETWORK_CLAIM_PREFIX):
                continue  # a reference verdict (see network_verdicts), not a rate over seeds
            if c["id"] not in table:
                order.append(c["id"])
                table[c["id"]] = []
            table[c["id"]].append((run["seed"], c))
    from sgdtemp.claims import verdict_of

    out = []
    for cid in order:
        entries = table[cid]
        rates = [c.get("expected_rate") for _, c in entries if c.get("expected_rate") is not None]
        out.append(ClaimRate(
            chapter=chapter, id=cid, kind=kind_of(entries[-1][1]),
            n=len(entries), n_hold=sum(verdict_of(c) == "holds" for _, c in entries),
            expected_rate=(sum(rates) / len(rates)) if rates else None,
            failed_seeds=[s for s, c in entries if verdict_of(c) == "fails"],
            statement=str(entries[-1][1].get("statement", "")),
            verdicts=[(s, verdict_of(c)) for s, c in entries]))
    return out


# ------------------------------------------------------------------ failures against expectation


def poisson_binomial_sf(k: int, probabilities) -> float:
    """P(X ≥ k) for X the number of successes of independent trials with the given success
    probabilities (the Poisson-binomial law, by exact convolution); 1 for k ≤ 0."""
    if k <= 0:
        return 1.0
    dist = [1.0]  # dist[j] = P(j successes so far)
    for q in probabilities:
        q = min(1.0, max(0.0, float(q)))
        nxt = [0.0] * (len(dist) + 1)
        for j, pj in enumerate(dist):
            nxt[j] += pj * (1 - q)
            nxt[j + 1] += pj * q
        dist = nxt
    return float(min(1.0, max(0.0, sum(dist[k:]))))


@dataclass
class FailureCount:
    """Claim-runs that state an expected rate r, over a set of claims and seeds: how many
    failures the rates predict, Σ(1 − r), how many were observed, and the probability of
    observing at least that many if every claim held at its stated rate (independent runs:
    the Poisson-binomial tail, :func:`poisson_binomial_sf`)."""

    n_runs: int
    expected: float
    observed: int
    p_value: float

    def excess(self, flag_p: float = FLAG_P) -> bool:
        """More failures than the rates allow: P(X ≥ observed) below ``flag_p``."""
        return self.observed > self.expected and self.p_value < flag_p


def failure_count(rates, exclude=()) -> FailureCount:
    """:class:`FailureCount` over the claim-runs of ``rates`` (:class:`ClaimRate` objects)
    that state an expected rate, leaving out the (chapter, id) pairs in ``exclude``."""
    drop = set(exclude)
    probs, observed = [], 0
    for r in rates:
        if r.expected_rate is None or (r.chapter, r.id) in drop:
            continue
        probs += [1.0 - r.expected_rate] * r.n
        observed += r.n_fail
    return FailureCount(len(probs), float(sum(probs)), observed,
                        poisson_binomial_sf(observed, probs))


#: Why a claim fails more often than its stated rate, as the chapter's own text measures it:
#: (chapter, claim-id prefix) → reason. The report shows it beside every failing claim and
#: requires one for every flagged claim.
FAILURE_REASONS = {
    ("power_law", "escape_slope_"): (
        "stated against the SDE (2LH), whose discrete-time error at ηh = 0.1, B = 1 is not "
        "computed; SGD's escape slopes are steeper by many bootstrap s.e. (power_law, "
        "“Escape”). No expected rate is stated for these."),
    ("bayesian_evidence", "random_labels_separable_cover"): (
        "Cover's probability assumes points in general position; image features have a low "
        "effective dimension, so fewer random labellings are separable (bayesian_evidence, "
        "“Capacity”)."),
    ("two_minima", "test_loss_"): (
        "the signed first-order step correction treats each hot basin as a quadratic valley "
        "and leaves out the O(η) transfer of mass; residuals of its own size remain "
        "(two_minima, “Claims”)."),
}


def failure_reason(chapter: str, claim_id: str) -> str | None:
    """The measured reason a claim fails (:data:`FAILURE_REASONS`), or None."""
    for (ch, prefix), text in FAILURE_REASONS.items():
        if ch == chapter and claim_id.startswith(prefix):
            return text
    return None


def verdict_counts_by_chapter(chapters: list[str]) -> dict[str, dict[str, int]]:
    """Per chapter, how many claims hold, fail and are unresolved: a toy chapter's claims
    over every stored seed run (claim-runs), a network chapter's (and a toy chapter's
    ``net_`` claims) once, at the reference scale. Chapters with nothing stored are left out."""
    from sgdtemp.claims import verdict_of

    out: dict[str, dict[str, int]] = {}
    for ch in chapters:
        counts = {"holds": 0, "fails": 0, "unresolved": 0}
        seen = False
        if ch in TOY_CHAPTERS:
            for run in load_runs(ch):
                for c in run["claims"]:
                    if not c["id"].startswith(NETWORK_CLAIM_PREFIX):
                        counts[verdict_of(c)] += 1
                        seen = True
        for c in network_verdicts(ch) or []:
            counts[verdict_of(c)] += 1
            seen = True
        if seen:
            out[ch] = counts
    return out


@dataclass
class Resolution:
    """What would resolve an unresolved claim: ``factor`` (the multiple of today's seeds that
    brings its 80%-power detectable difference down to its margin or stated effect, assuming
    its standard error falls as 1/√seeds: (detectable/target)²), and ``cpu_hours`` (the extra
    CPU time at the cost of the chapter's committed runs, (factor − 1) × their CPU-hours from
    provenance: an upper estimate when the claim reads only some of the runs)."""

    chapter: str
    id: str
    detectable: float
    target: float
    factor: float
    cpu_hours: float | None


def store_cpu_hours(chapter: str) -> float | None:
    """CPU-hours of the committed runs in ``results/<chapter>``, each group counted once
    (:func:`sgdtemp.records.cpu_hours`); None without a store."""
    from sgdtemp.records import cpu_hours

    d = repo_root() / "results" / chapter
    files = list(d.glob("*.json")) if d.is_dir() else []
    if not files:
        return None
    return cpu_hours(json.loads(f.read_text()) for f in files)


def resolutions(chapters: list[str]) -> list[Resolution]:
    """Every unresolved network claim (reference scale) with the seeds factor and CPU-hours
    that would resolve it (see :class:`Resolution`). A claim without a numeric detectable
    difference and target gets factor NaN."""
    from sgdtemp.claims import verdict_of

    out = []
    for ch in chapters:
        cost = store_cpu_hours(ch)
        for c in network_verdicts(ch) or []:
            if verdict_of(c) != "unresolved":
                continue
            det = c.get("detectable")
            target = c.get("margin")
            if target is None and isinstance(c.get("predicted"), (int, float)):
                target = abs(float(c["predicted"]))
            ok = isinstance(det, (int, float)) and isinstance(target, (int, float)) and target > 0
            factor = (float(det) / float(target)) ** 2 if ok else float("nan")
            hours = (max(0.0, factor - 1) * cost) if (ok and cost is not None) else None
            out.append(Resolution(ch, c["id"], float(det) if ok else float("nan"),
                                  float(target) if ok else float("nan"), factor, hours))
    return out


# ------------------------------------------------------------------ the report's tables
#
# HTML for the appendix ``claims_report``: narrow tables read verdict first, statements
# wrapping in the widest column, every value as text (never a Python repr). The layout
# lives in the book's stylesheet (``_static/sgdtemp.css``, ``table.sgdtemp-report``); the
# inline colours keep the marks readable where that stylesheet is absent.

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def scientific(x: float, digits: int = 2) -> str:
    """``x`` for a reader: "0.013", "4.2 × 10⁻³⁴" (no "e" notation), "–" for None/NaN."""
    import math

    if x is None or not math.isfinite(float(x)):
        return "–"
    x = float(x)
    if x == 0 or 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits}g}"
    mant, exp = f"{x:.{digits - 1}e}".split("e")
    return f"{mant} × 10{str(int(exp)).translate(_SUPERSCRIPT)}"


def percent(rate: float | None) -> str:
    """An expected rate as a percentage with as many decimals as its distance from 100%
    needs: 0.9973 → "99.73%", 0.999 → "99.90%", 1 → "100%", None → "–"."""
    import math

    if rate is None:
        return "–"
    miss = 1.0 - float(rate)
    if miss <= 0:
        return "100%"
    decimals = max(0, math.ceil(-math.log10(miss)) - 1)
    return f"{100 * float(rate):.{decimals}f}%"


def chapter_title(chapter: str) -> str:
    """The chapter's title: the first level-1 heading of ``book/<chapter>.md``."""
    import re

    path = repo_root() / "book" / f"{chapter}.md"
    if path.exists():
        m = re.search(r"^# (.+)$", path.read_text(), re.M)
        if m:
            return m.group(1).strip()
    return chapter


def chapter_link(chapter: str) -> str:
    """An HTML link to the chapter's page (pages of the book sit side by side)."""
    import html

    return (f"<a class='reference internal' href='{html.escape(chapter)}.html'>"
            f"{html.escape(chapter_title(chapter))}</a>")


def _mark(verdict: str, title: str = "") -> str:
    from sgdtemp.claims import VERDICT_COLOURS, VERDICT_MARKS

    tip = f" title='{title}'" if title else f" title='{verdict}'"
    return (f"<span class='vmark {verdict}'{tip} style='color:{VERDICT_COLOURS[verdict]}'>"
            f"{VERDICT_MARKS[verdict]}</span>")


def _table(columns, rows, caption: str = "", cls: str = "") -> str:
    """``columns``: (header HTML, CSS class) pairs; ``rows``: lists of cell HTML."""
    head = "".join(f"<th class='{c}'>{h}</th>" for h, c in columns)
    body = "".join("<tr>" + "".join(f"<td class='{c}'>{cell}</td>"
                                    for (_, c), cell in zip(columns, r)) + "</tr>"
                   for r in rows)
    cap = f"<caption>{caption}</caption>" if caption else ""
    return (f"<div class='sgdtemp-report-wrap'><table class='sgdtemp-report {cls}'>{cap}"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _statement_cell(claim_id: str, statement: str, kind: str, note: str = "") -> str:
    import html

    from sgdtemp.claims import KIND_LABELS, statement_html

    label = KIND_LABELS.get(kind, "")
    check = f"<span class='claim-kind'>{html.escape(label)}</span>" if label else ""
    return (f"{check}{statement_html(statement)}"
            f"<div class='claim-id'>{html.escape(claim_id)}</div>{note}")


def rate_note(r: ClaimRate, flag_p: float = FLAG_P) -> str:
    """What a reader needs beside a claim that failed at some seed: flagged or not, and
    why (:data:`FAILURE_REASONS`). Empty for a claim that never failed."""
    import html

    if not r.n_fail:
        return ""
    why = failure_reason(r.chapter, r.id)
    seeds = ", ".join(str(s) for s in r.failed_seeds)
    if r.flagged(flag_p):
        text = (f"<b>Flagged</b>: failed at seed{'s' if r.n_fail > 1 else ''} {seeds}; "
                f"failing this often at its rate has P = {scientific(r.p_value)}. ")
        text += ("Why: " + html.escape(why)) if why else "Not yet explained."
        return f"<div class='note flagged'>{text}</div>"
    if r.p_value is not None:
        text = (f"Failed at seed{'s' if r.n_fail > 1 else ''} {seeds}: P = "
                f"{scientific(r.p_value)} at its rate, not below {scientific(flag_p)}, so "
                f"within chance.")
    else:
        text = f"Failed at seed{'s' if r.n_fail > 1 else ''} {seeds} (no rate stated)."
    if why:
        text += " " + html.escape(why)
    return f"<div class='note'>{text}</div>"


def toy_table_html(chapter: str, rates: list[ClaimRate], flag_p: float = FLAG_P) -> str:
    """One toy chapter's claims over its seeds: the verdict at each seed (✓ ✗ ?), the claim,
    how many runs held, the expected rate and P(failing this often)."""
    rows = []
    for r in rates:
        marks = "".join(_mark(v, f"seed {s}: {v}") for s, v in r.verdicts)
        rows.append([marks, _statement_cell(r.id, r.statement, r.kind, rate_note(r, flag_p)),
                     f"{r.n_hold}/{r.n}", percent(r.expected_rate), scientific(r.p_value)])
    n = sum(r.n for r in rates)
    held = sum(r.n_hold for r in rates)
    seeds = max((r.n for r in rates), default=0)
    caption = (f"{chapter_link(chapter)}: {held} of {n} claim-runs hold "
               f"({len(rates)} claims, {seeds} seeds)")
    cols = [("by seed", "marks"), ("claim", "statement"), ("held", "held"),
            ("expected rate", "num"), ("<i>P</i>", "num")]
    return _table(cols, rows, caption, "toy")


def _values_line(c: dict) -> str:
    import html

    from sgdtemp.claims import _fmt

    parts = [f"{k} {_fmt(c.get(k))}" for k in ("predicted", "measured", "tolerance")
             if c.get(k) not in (None, "", "–", "—")]
    for k in ("detectable", "margin"):
        if c.get(k) is not None:
            parts.append(f"{k} {_fmt(c[k])}")
    return f"<div class='values'>{html.escape(' · '.join(parts))}</div>"


def network_table_html(chapter: str, claims: list[dict]) -> str:
    """A chapter's claims at the reference scale, verdict first; the statement takes the
    width, its numbers on a line beneath it."""
    from sgdtemp.claims import verdict_of, verdict_summary

    rows = [[_mark(verdict_of(c)),
             _statement_cell(str(c["id"]), str(c.get("statement", "")), kind_of(c),
                             _values_line(c))] for c in claims]
    caption = f"{chapter_link(chapter)}: {verdict_summary(claims)}"
    return _table([("✓ ✗ ?", "verdict"), ("claim (predicted · measured · tolerance)",
                                          "statement")], rows, caption, "network")


def counts_table_html(chapters: list[str], flag_p: float = FLAG_P) -> str:
    """Per chapter: claims (toy: claim-runs over seeds) that hold, fail and are unresolved
    (:func:`verdict_counts_by_chapter`), and for toy chapters the failures their stated
    rates predict against those observed (:func:`failure_count`)."""
    counts = verdict_counts_by_chapter(chapters)
    rows = []
    for ch in chapters:
        if ch not in counts:
            continue
        n = counts[ch]
        if ch in TOY_CHAPTERS:
            rates = claim_rates(ch)
            f = failure_count(rates)
            n_net = len(network_verdicts(ch) or [])
            what = f"{sum(r.n for r in rates)} claim-runs over seeds" + (
                f", {n_net} network claims once" if n_net else "")
            fail = [f"{f.expected:.2f}", str(f.observed),
                    ("<b class='flagged'>" if f.excess(flag_p) else "")
                    + scientific(f.p_value) + ("</b>" if f.excess(flag_p) else "")]
        else:
            what = "claims at the reference scale"
            fail = ["–", "–", "–"]
        rows.append([f"{chapter_link(ch)}<div class='sub'>{what}</div>",
                     str(n["holds"]), str(n["fails"]), str(n["unresolved"])] + fail)
    cols = [("chapter", "statement"), (_mark("holds"), "count"), (_mark("fails"), "count"),
            (_mark("unresolved"), "count"), ("failures expected", "num"),
            ("observed", "num"), ("<i>P</i>(≥ observed)", "num")]
    return _table(cols, rows, "", "counts")


def flagged_html(rates: list[ClaimRate], flag_p: float = FLAG_P) -> str:
    """The flagged claims as a list: how often each held against its rate, and why
    (:data:`FAILURE_REASONS`); "none" when nothing is flagged."""
    import html

    items = []
    for r in rates:
        if not r.flagged(flag_p):
            continue
        why = failure_reason(r.chapter, r.id)
        items.append(f"<li>{chapter_link(r.chapter)}, <code>{html.escape(r.id)}</code>: held "
                     f"{r.n_hold} of {r.n} at an expected rate of {percent(r.expected_rate)} "
                     f"(P = {scientific(r.p_value)}). "
                     + (html.escape(why[0].upper() + why[1:]) if why else
                        "<b class='flagged'>Not yet explained.</b>") + "</li>")
    return f"<ul class='sgdtemp-flagged'>{''.join(items)}</ul>" if items else "<p>None.</p>"


def resolutions_html(items: list[Resolution]) -> str:
    """Each unresolved network claim: its detectable difference against its margin (or
    stated effect), the multiple of today's seeds and the CPU-hours that would resolve it
    (a sentence when there is none)."""
    if not items:
        return "<p>None: every network claim in the stored reference runs is decided.</p>"
    rows = []
    for r in items:
        hours = "–" if r.cpu_hours is None else f"{r.cpu_hours:,.1f}"
        factor = "–" if r.factor != r.factor else f"{r.factor:.1f}×"
        rows.append([f"{chapter_link(r.chapter)}<div class='claim-id'>{r.id}</div>",
                     scientific(r.detectable, 3), scientific(r.target, 3), factor, hours])
    cols = [("claim", "statement"), ("detectable", "num"), ("margin or effect", "num"),
            ("seeds needed", "num"), ("extra CPU-hours", "num")]
    return _table(cols, rows, "", "resolutions")


def provenance_html(chapters: list[str]) -> str:
    """Where the stored runs come from: seeds, commits (+: uncommitted edits), dates, and
    the mean wall time of one run."""
    rows = []
    for ch in chapters:
        runs = load_runs(ch) if ch in TOY_CHAPTERS else [r for r in [load_reference(ch)] if r]
        if not runs:
            rows.append([chapter_link(ch), "none stored", "–", "–", "–"])
            continue
        seeds = ", ".join(str(r["seed"]) for r in runs) if ch in TOY_CHAPTERS else "reference"
        commits = ", ".join(sorted({str(r.get("git_commit", "?"))[:8]
                                    + ("+" if r.get("git_dirty") else "") for r in runs}))
        dates = ", ".join(sorted({str(r.get("date", "?"))[:10] for r in runs}))
        wall = sum(float(r.get("wall_time_s", 0)) for r in runs) / len(runs)
        rows.append([chapter_link(ch), seeds, commits, dates, f"{wall:.0f} s"])
    cols = [("chapter", "statement"), ("seeds", "short"), ("commit", "short"),
            ("date", "short"), ("wall time per run", "num")]
    return _table(cols, rows, "", "provenance")


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m sgdtemp claims-report",
                                description="Run every chapter's claims over seeds into "
                                f"{results_dir()} (only the missing runs).")
    p.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS),
                   help="seeds of the toy chapters (default: %(default)s)")
    p.add_argument("--chapters", nargs="+", default=None,
                   help="restrict to these chapters (default: all)")
    p.add_argument("--fidelity", default="default", help="fidelity of the runs")
    p.add_argument("--dry-run", action="store_true", help="list the missing runs and stop")
    args = p.parse_args(argv)
    try:
        if args.dry_run:
            for c, s in missing(args.seeds, args.chapters):
                print(c, s if s is not None else "reference")
            return 0
        compute(args.seeds, args.chapters, args.fidelity)
    except (ParameterError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ParameterError) else 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
