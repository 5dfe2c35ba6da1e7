"""The scorecard: each seed paper's main claims, the book's verdict on each, and the chapter
that decides it, read from the chapters' own claims (no verdict is written here).

``PAPER_CLAIMS`` maps a paper's claim to the claim ids (``fnmatch`` patterns) of the
chapter that tests it, and says at what scale the chapter tests it (a template filled from
the chapter's ``default`` parameters, so it names the model, data and scale that produced
the verdict). The claims are read where the claims report stores them
(:mod:`sgdtemp.claims_report`): a network chapter's reference run
(``results/claims_report/<chapter>/reference.json``), and for a toy chapter its stored
seed runs: a claim that states an expected rate fails when the claims report flags it (it
failed more often over the seeds than its rate allows, P < :data:`sgdtemp.claims_report.FLAG_P`)
and otherwise takes the latest run's verdict, a chance failure read as holding; any other
claim, and the network claims (ids ``net_…``, which read the same committed runs at every
seed), take the verdict of the latest stored run (the highest seed).

**The combination rule.** A paper's claim tested by several of the book's claims *fails* if
any of them fails, *holds* if all of them hold, and is otherwise *unresolved* (some
unresolved, none failing). A claim whose patterns match nothing stored is unresolved, and the
table says that no claim was recorded.
"""

from __future__ import annotations

from sgdtemp import stats

import html
import string
from dataclasses import dataclass
from fnmatch import fnmatchcase

from sgdtemp import claims_report as cr
from sgdtemp.claims import verdict_of


@dataclass(frozen=True)
class Paper:
    """A seed paper: ``key`` in the bibliography (book/references.bib), ``cite`` its
    author–year form, ``setting`` the paper's own model, data and scale."""

    key: str
    cite: str
    setting: str


@dataclass(frozen=True)
class PaperClaim:
    """One main claim of a paper (``paper``, a key of ``PAPERS``), in one short sentence
    (``claim``); the ``chapter`` whose claims decide it, their ids as ``fnmatch``
    ``patterns``; ``scale``, a template of the chapter's default parameters saying where the
    book tests it; ``section``, the label of the deciding section ("" for the chapter)."""

    paper: str
    claim: str
    chapter: str
    patterns: tuple
    scale: str
    section: str = ""


PAPERS = {
    "bradley2022shift": Paper("bradley2022shift", "Bradley et al. (2022)",
                              "CIFAR-10 networks; a two-minima loss"),
    "jastrzebski2017three": Paper("jastrzebski2017three", "Jastrzębski et al. (2017)",
                                  "MLP on Fashion-MNIST; ResNet-56, VGG-11 on CIFAR-10"),
    "smith2021origin": Paper("smith2021origin", "Smith et al. (2021)",
                             "Wide-ResNet on CIFAR-10"),
    "smith2018bayesian": Paper("smith2018bayesian", "Smith & Le (2018)",
                               "logistic regression, shallow MLP on MNIST"),
    "mori2022powerlaw": Paper("mori2022powerlaw", "Mori et al. (2022)", "linear regression"),
    "mori2020noise": Paper("mori2020noise", "Mori & Ueda (2020)",
                           "deep networks, large batches"),
}

# Scale templates: "{name}" a parameter, "{name!n}" the length of a list, "{name!m}" its
# largest entry.
_CIFAR = ("small CNN, CIFAR-10 ({n_train:,} images), {temperatures!n} T × {batch_sizes!n} B, "
          "{epochs} epochs")
_FMNIST = "MLP, Fashion-MNIST ({n_train:,} images)"

PAPER_CLAIMS = (
    PaperClaim("bradley2022shift", "at fixed η/B, SGD ends in the same state",
               "cifar10_temperature", ("invariance*",), _CIFAR),
    PaperClaim("bradley2022shift", "test loss falls as the temperature rises",
               "cifar10_temperature", ("test_loss_falls_with_T",), _CIFAR),
    PaperClaim("bradley2022shift", "hotter SGD picks the wide minimum; shift-curvature "
               "terms give the test loss", "two_minima",
               ("wide_gains_with_T", "sharp_wins_when_cold", "test_loss_*_matches_density",
                "test_loss_*_shape"),
               "1-D two-minima finite sum, {n_replicas:,} replicas, {temperatures!n} "
               "temperatures"),
    PaperClaim("jastrzebski2017three", "higher η/B ends in wider minima",
               "three_factors", ("width_*_falls_with_T",),
               _FMNIST + ", {lrs!n} η × {batch_sizes!n} B, {epochs} epochs",
               "three-factors-width"),
    PaperClaim("jastrzebski2017three", "runs of equal η/B end equally wide", "three_factors",
               ("width_*_collapses_onto_T", "width_*_invariant*"),
               _FMNIST + ", {lrs!n} η × {batch_sizes!n} B, {epochs} epochs",
               "three-factors-width"),
    PaperClaim("jastrzebski2017three", "(βη, βB) keeps the curves until β is too large, "
               "sooner at small N", "three_factors", ("rescale_*",),
               _FMNIST + ", β ≤ {betas!m:g}, N ∈ {rescale_n_train}",
               "three-factors-rescaling"),
    PaperClaim("jastrzebski2017three", "a cyclic batch size can replace a cyclic learning "
               "rate", "three_factors", ("schedule_cyclic_batch_matches_cyclic_lr",),
               _FMNIST + ", {schedule_epochs} epochs", "three-factors-schedules"),
    PaperClaim("jastrzebski2017three", "with random labels, higher η/B generalizes better",
               "three_factors", ("memorization_*",),
               "MLP, {memorization_n_train:,} Fashion-MNIST images, label noise {label_noise}",
               "three-factors-memorization"),
    PaperClaim("smith2021origin", "mean SGD follows a modified loss; its regularizer "
               "scales as ε/B", "implicit_regularization",
               ("expectation_exact", "order_*", "modified_closer_*", "mc_below_errors_*",
                "strength_eps_over_B_*"),
               "linear and logistic regression, N = {n_examples}, {n_orderings:,} orderings"),
    PaperClaim("smith2021origin", "the explicit regularizer raises test accuracy at small ε",
               "implicit_regularization", ("net_regularizer_*",),
               "MLP, {net_n_train:,} Fashion-MNIST images, {net_epochs} epochs",
               "implicit-regularization-network"),
    PaperClaim("smith2018bayesian", "the evidence tells real from random labels and tracks "
               "accuracy", "bayesian_evidence",
               ("random_evidence_below_chance", "real_evidence_above_chance",
                "evidence_real_above_random", "evidence_tracks_accuracy"),
               "logistic regression, {n_train} Fashion-MNIST images × {n_subsets} subsets"),
    PaperClaim("smith2018bayesian", "at fixed ε an optimum batch size exists, B_opt ∝ εN",
               "bayesian_evidence", ("net_interior_optimum", "net_bopt_slope_*"),
               "MLP, Fashion-MNIST, {net_n_trains!n} N × {net_lrs!n} ε, {net_epochs} epochs",
               "bayesian-evidence-network"),
    PaperClaim("mori2022powerlaw", "the stationary density is a power law L^−φ, "
               "φ = 1 + B/(ηh)", "power_law", ("sigma_*", "phi_*"),
               "linear regression, N = {n_examples:,}, B ∈ {phi_batch_sizes}",
               "power-law-density"),
    PaperClaim("mori2022powerlaw", "escape is set by the log-loss barrier, exponent "
               "B/(ηh*) + 1 − d/2", "power_law", ("escape_*",),
               "linear regression, d ∈ {fpt_dims}, η = {fpt_lr}, B = {fpt_batch_size}",
               "power-law-escape"),
    PaperClaim("mori2020noise", "noise enhancement gives the batch B/(1 + 2α + 2α²)",
               "noise_enhancement",
               ("covariance_factor_*", "stationary_*", "equal_steps_*",
                "equal_evaluations_ratio"),
               "least squares, N = {n_examples}, B = {batch_size}, {n_replicas:,} replicas"),
    PaperClaim("mori2020noise", "a large batch with enhanced noise beats a small batch",
               "noise_enhancement", ("net_enhanced_beats_*",),
               "MLP, {net_n_train:,} Fashion-MNIST images, {net_batch_sizes!n} B, "
               "{net_steps:,} steps", "noise-enhancement-network"),
)


def combine(verdicts) -> str:
    """The combination rule (:func:`sgdtemp.stats.decisions.joint_verdict`): ``fails`` if any fails,
    ``holds`` if all hold (and there is at least one), ``unresolved`` otherwise."""
    return stats.joint_verdict(verdicts)


def chapter_claims(chapter: str) -> list[dict]:
    """The stored claims the scorecard reads for ``chapter``, each with the verdict it
    counts with (module docstring): a network chapter's reference run; a toy chapter's
    latest seed run, with a claim that states a rate judged over all its seeds."""
    if chapter not in cr.TOY_CHAPTERS:
        ref = cr.load_reference(chapter)
        return ref["claims"] if ref else []
    runs = cr.load_runs(chapter)
    if not runs:
        return []
    rates = {r.id: r for r in cr.claim_rates(chapter)}
    out = []
    for c in runs[-1]["claims"]:
        r = rates.get(c["id"])
        v = verdict_of(c)
        if r is not None and r.expected_rate is not None:
            v = "fails" if r.flagged() else ("holds" if v == "fails" else v)
        out.append(dict(c, verdict=v, holds=v == "holds"))
    return out


def matching(claims: list[dict], patterns) -> list[dict]:
    return [c for c in claims if any(fnmatchcase(str(c["id"]), p) for p in patterns)]


class _Params(string.Formatter):
    """Fills a scale template from a configuration: ``!n`` is a list's length, ``!m`` its
    largest entry; a name the configuration lacks shows as "?"."""

    def get_value(self, key, args, kwargs):
        return kwargs.get(key, "?") if isinstance(key, str) else super().get_value(key, args, kwargs)

    def convert_field(self, value, conversion):
        if value == "?" or conversion not in ("n", "m"):
            return value if value == "?" else super().convert_field(value, conversion)
        return len(value) if conversion == "n" else max(value)

    def format_field(self, value, spec):
        if value == "?":
            return "?"
        if isinstance(value, list):
            return "{" + ", ".join(format(v, "g") if isinstance(v, float) else str(v)
                                   for v in value) + "}"
        return super().format_field(value, spec)


def scale(pc: PaperClaim) -> str:
    """Where the chapter tests the claim, filled from its ``default`` parameters."""
    from sgdtemp.chapters import parameter_set

    cfg = parameter_set(pc.chapter).resolve(fidelity="default")
    return _Params().format(pc.scale, **cfg)


@dataclass(frozen=True)
class Row:
    """A scorecard row: the paper, its claim, the combined verdict, the book's claims that
    decided it as (id, verdict) pairs (``ids``) and the filled-in scale."""

    paper: Paper
    claim: PaperClaim
    verdict: str
    ids: tuple
    scale: str


def scorecard(paper_claims=PAPER_CLAIMS) -> list[Row]:
    """One :class:`Row` per paper claim, its verdict by :func:`combine` over the stored
    claims its patterns match."""
    cache: dict[str, list[dict]] = {}
    rows = []
    for pc in paper_claims:
        if pc.chapter not in cache:
            cache[pc.chapter] = chapter_claims(pc.chapter)
        found = matching(cache[pc.chapter], pc.patterns)
        rows.append(Row(PAPERS[pc.paper], pc, combine(verdict_of(c) for c in found),
                        tuple((c["id"], verdict_of(c)) for c in found), scale(pc)))
    return rows


def counts(rows: list[Row]) -> dict[str, int]:
    out = {"holds": 0, "fails": 0, "unresolved": 0}
    for r in rows:
        out[r.verdict] += 1
    return out


def _short_title(chapter: str) -> str:
    title = cr.chapter_title(chapter)
    return title.split(":")[0].split(",")[0].strip()


def scorecard_html(rows: list[Row]) -> str:
    """The scorecard as a narrow table, verdict first: per paper (its own setting beside its
    name), each claim, and beneath it the scale the book tests it at and a link to the
    deciding chapter (its section where one is named). A verdict's tooltip lists the book's
    claims behind it."""
    body, last = [], None
    for r in rows:
        if r.paper.key != last:
            body.append(f"<tr class='paper'><td colspan='2'>{html.escape(r.paper.cite)}"
                        f"<span class='scale'> — their setting: "
                        f"{html.escape(r.paper.setting)}</span></td></tr>")
            last = r.paper.key
        tip = "; ".join(f"{i}: {v}" for i, v in r.ids) or "no claim recorded"
        note = "" if r.ids else " <span class='scale'>(no claim recorded yet)</span>"
        href = f"{r.claim.chapter}.html" + (f"#{r.claim.section}" if r.claim.section else "")
        body.append(
            f"<tr><td class='verdict'>{cr._mark(r.verdict, html.escape(tip))}</td>"
            f"<td class='statement'>{html.escape(r.claim.claim)}{note}"
            f"<div class='scale'>here: {html.escape(r.scale)} · "
            f"<a class='reference internal' href='{html.escape(href)}'>"
            f"{html.escape(_short_title(r.claim.chapter))}</a></div></td></tr>")
    head = ("<tr><th class='verdict'>✓ ✗ ?</th>"
            "<th class='statement'>the paper's claim · where the book tests it</th></tr>")
    return (f"<div class='sgdtemp-report-wrap'><table class='sgdtemp-report scorecard'>"
            f"<thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>")
