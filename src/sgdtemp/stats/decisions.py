"""Verdicts: a claim holds, fails, or is unresolved, and the power that decides which.

Every statistical claim of the book is one of two tests of an estimate d̂ with standard
error se (from the chapter's own seeds or replicas, with ``dof`` degrees of freedom; None
when se is known, as for a Monte Carlo error over thousands of replicas):

* **agreement** ("invariance", "collapse", "matches"): an *equivalence test* with a margin
  m fixed before the data (from theory, or a stated fraction of the effect the chapter is
  about). With t the critical multiple (:func:`t_multiplier`; 3 standard errors, or the
  Student-t multiple with the same two-sided rate 0.27% when se comes from few seeds)::

      holds       |d̂| + t·se ≤ m   (the whole interval d̂ ± t·se lies inside ±m)
                  and the test could see a departure of size m (detectable ≤ m);
      fails       |d̂| − t·se > m   (the difference lies significantly outside ±m);
      unresolved  otherwise.

* **directional** ("hotter is better", "falls with T"): a one-sided test of the predicted
  sign, against an effect size e the chapter states beforehand (the predicted effect, or the
  smallest effect it cares about)::

      holds       s·d̂ > t·se          (significant in the predicted direction s = ±1);
      fails       s·d̂ < −t·se         (significant the other way),
                  or detectable ≤ e and not significant (the test could see e and found
                  nothing);
      unresolved  otherwise (too little power to see e).

``detectable`` is the 80%-power detectable difference δ₈₀: the true ``|d|`` at which the
test ``|d̂| > t·se`` fires with probability 0.8, from the noncentral t distribution with ``dof``
degrees of freedom (the normal when se is known). Units: those of d̂.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from scipy import optimize as _opt
from scipy import stats as _st

#: The standard score of a single claim's criterion (3 standard errors).
Z_CLAIM = 3.0
#: The power at which ``detectable`` is stated.
POWER = 0.8
VERDICTS = ("holds", "fails", "unresolved")


def t_multiplier(dof: int | None, z: float = Z_CLAIM) -> float:
    """t_dof⁻¹(Φ(z)): the multiple of an estimated standard error (from ``dof`` degrees of
    freedom) whose two-sided exceedance rate equals that of z known standard errors
    (0.27% for z = 3); ``dof`` None gives z itself. With few seeds the plain z is far too
    lenient: at 2 degrees of freedom ``|t| > 3`` happens 9.5% of the time; the multiplier
    is 19.2 there, 3.96 at 10, 3.54 at 16, and tends to z as dof grows."""
    if dof is None:
        return float(z)
    if dof < 1:
        raise ValueError(f"dof must be a positive integer; got {dof!r}")
    return _t_multiplier(int(dof), float(z))


@lru_cache(maxsize=1024)
def _t_multiplier(dof: int, z: float) -> float:
    return float(_st.t.ppf(_st.norm.cdf(z), dof))


def rejection_rate(effect: float, dof: int | None, z: float = Z_CLAIM) -> float:
    """P(``|d̂/se|`` > t) when the true difference is ``effect`` standard errors: the noncentral
    t with ``dof`` degrees of freedom and noncentrality ``effect`` (normal for dof None),
    t = :func:`t_multiplier` (dof, z). Both tails counted. Dimensionless."""
    t = t_multiplier(dof, z)
    if dof is None:
        return float(_st.norm.sf(t - effect) + _st.norm.cdf(-t - effect))
    upper, lower = _st.nct.sf(t, dof, effect), _st.nct.cdf(-t, dof, effect)
    # scipy's noncentral t returns NaN far in a tail, where the probability is 0 or 1.
    upper = float(upper) if math.isfinite(upper) else float(effect > t)
    lower = float(lower) if math.isfinite(lower) else float(effect < -t)
    return min(1.0, upper + lower)


def detectable_difference(se: float, dof: int | None = None, z: float = Z_CLAIM,
                          power: float = POWER) -> float:
    """δ₈₀: the smallest true difference that the test ``|d̂| > t·se`` flags with probability
    ``power``, t = :func:`t_multiplier` (dof, z), solved exactly on the noncentral t (normal
    when dof is None): δ = λ·se with rejection_rate(λ, dof) = power. For dof None and z = 3
    it is (3 + 0.84)·se; at 8 degrees of freedom 5.36·se, at 2 about 24·se. Units of se."""
    if not 0 < power < 1:
        raise ValueError(f"power must be between 0 and 1; got {power!r}.")
    if not se >= 0:
        raise ValueError(f"se must be a non-negative number; got {se!r}.")
    return float(_detectable_multiple(dof, float(z), float(power)) * se)


@lru_cache(maxsize=256)
def _detectable_multiple(dof: int | None, z: float, power: float) -> float:
    """λ with rejection_rate(λ, dof, z) = power: δ₈₀ in units of se (it depends on se only
    through that scale, so it is solved once per (dof, z, power))."""
    if rejection_rate(0.0, dof, z) >= power:
        return 0.0
    hi = t_multiplier(dof, z) + 10.0
    while rejection_rate(hi, dof, z) < power:
        hi *= 2
    return float(_opt.brentq(lambda x: rejection_rate(x, dof, z) - power, 0.0, hi, xtol=1e-10))


@dataclass(frozen=True)
class Decision:
    """One test's verdict (``holds``, ``fails`` or ``unresolved``) and the numbers behind it:
    the ``estimate`` d̂ and its ``se``, ``dof`` (None: known se), the critical multiple
    ``threshold`` t, the 80%-power ``detectable`` difference, and for an agreement claim its
    ``margin``, for a directional one its ``effect`` and ``sign``. Units of d̂."""

    kind: str
    verdict: str
    estimate: float
    se: float
    dof: int | None
    threshold: float
    detectable: float
    margin: float | None = None
    effect: float | None = None
    sign: int | None = None

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    @property
    def interval(self) -> tuple[float, float]:
        """d̂ ± t·se, the interval the verdict is read from."""
        return (self.estimate - self.threshold * self.se, self.estimate + self.threshold * self.se)

    @property
    def score(self) -> float:
        """d̂/se (0 when se is 0 and d̂ is 0)."""
        if self.se == 0:
            return 0.0 if self.estimate == 0 else math.copysign(math.inf, self.estimate)
        return self.estimate / self.se


def _check(estimate, se, margin_or_effect, name) -> tuple[float, float, float]:
    d, s, m = float(estimate), float(se), float(margin_or_effect)
    if not (math.isfinite(d) and math.isfinite(s) and s >= 0):
        raise ValueError(f"estimate and se must be finite, se ≥ 0; got {estimate!r} ± {se!r}.")
    if not (math.isfinite(m) and m > 0):
        raise ValueError(f"{name} must be a positive number fixed before the data; got {margin_or_effect!r}.")
    return d, s, m


def equivalence(estimate: float, se: float, margin: float, dof: int | None = None,
                z: float = Z_CLAIM) -> Decision:
    """The agreement verdict of d̂ ± se against ±``margin`` (see the module docstring):
    holds when d̂ ± t·se lies inside ±margin and δ₈₀ ≤ margin, fails when ``|d̂|`` − t·se >
    margin, unresolved otherwise."""
    d, s, m = _check(estimate, se, margin, "margin")
    t = t_multiplier(dof, z)
    det = detectable_difference(s, dof, z)
    if abs(d) - t * s > m:
        verdict = "fails"
    elif abs(d) + t * s <= m and det <= m:
        verdict = "holds"
    else:
        verdict = "unresolved"
    return Decision("agreement", verdict, d, s, dof, t, det, margin=m)


def directional(estimate: float, se: float, effect: float, sign: int = 1,
                dof: int | None = None, z: float = Z_CLAIM) -> Decision:
    """The directional verdict of d̂ ± se for the predicted sign ``sign`` (+1: d > 0) and the
    effect size ``effect`` > 0 stated beforehand (see the module docstring): holds when
    sign·d̂ > t·se; fails when sign·d̂ < −t·se, or when δ₈₀ ≤ effect and the test found
    nothing; unresolved otherwise."""
    d, s, e = _check(estimate, se, effect, "effect")
    if sign not in (1, -1):
        raise ValueError(f"sign must be +1 or −1; got {sign!r}.")
    t = t_multiplier(dof, z)
    det = detectable_difference(s, dof, z)
    if sign * d > t * s:
        verdict = "holds"
    elif sign * d < -t * s or det <= e:
        verdict = "fails"
    else:
        verdict = "unresolved"
    return Decision("directional", verdict, d, s, dof, t, det, effect=e, sign=sign)


def joint_verdict(verdicts) -> str:
    """The verdict of a claim made of parts (one per temperature, per run, ...): ``fails``
    if any part fails, ``holds`` if there is at least one part and every part holds,
    ``unresolved`` otherwise."""
    verdicts = list(verdicts)
    bad = set(verdicts) - set(VERDICTS)
    if bad:
        raise ValueError(f"verdicts must be among {VERDICTS}; got {sorted(bad)}.")
    if "fails" in verdicts:
        return "fails"
    return "holds" if verdicts and set(verdicts) == {"holds"} else "unresolved"


def seeds_to_detect(effect: float, sd_per_seed: float, n_now: int, dof_per_seed: float = 1.0,
                    dof_offset: int = -1, z: float = Z_CLAIM, max_seeds: int = 10_000) -> int | None:
    """How many seeds n would make δ₈₀ ≤ ``effect`` for an estimate whose standard error
    scales as sd_per_seed·√(n_now/n)·(se now = sd_per_seed) — i.e. the seeds that would
    resolve an unresolved claim — with dof = dof_per_seed·n + dof_offset. None if more than
    ``max_seeds``. ``sd_per_seed`` here is the claim's current standard error."""
    if not (effect > 0 and sd_per_seed > 0 and n_now >= 1):
        raise ValueError("effect and the standard error must be positive and n_now ≥ 1.")
    for n in range(max(2, n_now), max_seeds + 1):
        se = sd_per_seed * math.sqrt(n_now / n)
        dof = max(1, int(round(dof_per_seed * n + dof_offset)))
        if detectable_difference(se, dof, z) <= effect:
            return n
    return None
