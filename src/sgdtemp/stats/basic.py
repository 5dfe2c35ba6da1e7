"""The statistics the claims are judged with.

Every claim of the book compares a measurement with a prediction and a tolerance of
``z`` standard errors (see :mod:`sgdtemp.claims` for the rule). This module computes
those standard errors from the chapter's own independent replicas or seeds, and the
rate at which a claim *should* hold if the prediction is right, so that the claims
report can tell a claim that fails by bad luck from one that fails too often.

Conventions: ``n`` independent values x_1..x_n (replicas, seeds, subsets); the sample
standard deviation s uses n − 1; a standard error is the standard deviation of an
estimate (same units as the estimate). Non-finite values are ignored where said.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats as _st

from sgdtemp.stats.decisions import Z_CLAIM

# ------------------------------------------------------------------ means


def mean_se(x, axis=None) -> tuple:
    """Mean x̄ = Σx_i/n and its standard error s/√n, s² = Σ(x_i − x̄)²/(n − 1).

    NaN entries are left out (n counts the finite ones). ``axis`` as in NumPy;
    returns floats for ``axis=None``, arrays otherwise.
    """
    x = np.asarray(x, dtype=float)
    n = np.sum(np.isfinite(x), axis=axis)
    m = np.nanmean(x, axis=axis)
    se = np.nanstd(x, axis=axis, ddof=1) / np.sqrt(n)
    if axis is None:
        return float(m), float(se)
    return m, se


def paired_difference(a, b, axis=None) -> tuple:
    """Mean of the paired differences d_i = a_i − b_i and its standard error s_d/√n.

    Use it when a and b were measured on the same seeds or subsets: the shared part of
    their errors cancels, which the independent formula √(se_a² + se_b²) ignores.
    """
    return mean_se(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), axis=axis)


def seed_paired_sd(x) -> tuple[float, int]:
    """Standard deviation of one run's value once its seed's shared part is removed, and
    its degrees of freedom: for ``x`` of shape (cells..., seeds), every cell (e.g. a (T, B)
    pair) run with the same seeds, the additive model x_cs = μ_c + σ_s + ε_cs (a seed
    shifts every cell alike, as shared initial weights do) gives

        s² = Σ_cs (x_cs − x̄_c· − x̄_·s + x̄_··)² / ((C − 1)(S − 1)),   dof = (C − 1)(S − 1).

    The paired difference of two cells' seed means, d̄ = x̄_a· − x̄_b·, then has standard
    error s·√(2/S) (judge it with ``sgdtemp.stats.t_multiplier(dof)`` standard errors
    when dof is small). With two seeds, s² = Σ_c (δ_c − δ̄)²/(2(C − 1)), δ_c = x_c1 − x_c2.
    Cells with a non-finite value are left out whole.
    """
    x = np.asarray(x, dtype=float)
    x = x.reshape(-1, x.shape[-1])
    x = x[np.all(np.isfinite(x), axis=1)]
    c, n = x.shape
    if c < 2 or n < 2:
        raise ValueError(f"seed_paired_sd needs at least 2 complete cells of at least 2 seeds; "
                         f"got {c} × {n}.")
    r = x - x.mean(axis=1, keepdims=True) - x.mean(axis=0, keepdims=True) + x.mean()
    dof = (c - 1) * (n - 1)
    return float(np.sqrt(np.sum(r * r) / dof)), int(dof)


@dataclass(frozen=True)
class Plateau:
    """Whether a curve has plateaued over its last ``window`` points: the least-squares
    ``change`` across the window (slope × (window − 1), units of the curve), its standard
    error ``se`` from the scatter about the line, and the score ``z`` of the verdict."""

    change: float
    se: float
    window: int
    z: float

    @property
    def holds(self) -> bool:
        """True when the change is within noise, abs(change) ≤ z·se."""
        return abs(self.change) <= self.z * self.se


def plateau(y, window: int, z: float = 3.0) -> Plateau:
    """Stationarity criterion of a curve ``y`` (e.g. the training loss after each epoch):
    fit a line to its last ``window`` values against their index; the curve has plateaued
    when the fitted change over the window, slope·(window − 1), is within ``z`` standard
    errors of zero, se = (window − 1)·√(σ̂²/Σ(t − t̄)²), σ̂² = Σ residual²/(window − 2)."""
    y = np.asarray(y, dtype=float).ravel()
    if not (isinstance(window, (int, np.integer)) and 3 <= window <= y.size):
        raise ValueError(f"window must be an integer between 3 and the curve's length {y.size}; "
                         f"got {window!r}.")
    fit = slope_se(np.arange(window, dtype=float), y[-window:])
    return Plateau(float(fit.slope * (window - 1)), float(fit.se * (window - 1)), int(window),
                   float(z))


def plateau_epoch(y, window: int, z: float = 3.0) -> int | None:
    """The first index e at which ``plateau(y[:e + 1], window, z)`` holds (the curve had
    plateaued over the ``window`` values ending at e), or None if it never does."""
    y = np.asarray(y, dtype=float).ravel()
    for e in range(window - 1, y.size):
        if plateau(y[: e + 1], window, z).holds:
            return e
    return None


def plateau_settled_epoch(y, window: int, z: float = 3.0) -> int | None:
    """The first index e from which the curve ``y`` stays plateaued: ``plateau(y[:e' + 1],
    window, z)`` holds for every e' from e to the end, or None if it fails at the end.

    Stricter than :func:`plateau_epoch`, which a noisy descent can pass once by chance
    early on: a run "has settled by epoch e" only if no later window detects a drift."""
    y = np.asarray(y, dtype=float).ravel()
    settled = None
    for e in range(y.size - 1, window - 2, -1):  # from the end backwards
        if not plateau(y[: e + 1], window, z).holds:
            break
        settled = e
    return settled


def difference_se(se_a, se_b):
    """Standard error of a − b for *independent* estimates: √(se_a² + se_b²)."""
    return np.hypot(se_a, se_b)


@dataclass(frozen=True)
class GapFraction:
    """The fraction f = d̄₁/d̄₂ of a gap that a treatment closes, from seed-paired differences
    d₁ = treated − base and d₂ = target − base: ``fraction`` f ± ``se`` (delta method around
    the ratio's value, with the covariance of the two means from the seeds they share), and
    the linear contrast ``contrast`` D = d̄₁ − f₀·d̄₂ ± ``contrast_se`` with ``dof`` degrees of
    freedom: "f > f₀" is the directional test of D > 0 (exact in D, no ratio
    approximation). Units: f dimensionless, D in the metric's units."""

    fraction: float
    se: float
    contrast: float
    contrast_se: float
    dof: int
    f0: float
    n_treated: int
    n_target: int


def gap_fraction(treated, base, target, f0: float = 0.5) -> GapFraction:
    """How much of the gap from ``base`` to ``target`` the ``treated`` cell closes.

    Each argument holds one value per seed, aligned (seed s in position s; NaN where a cell
    lacks that seed). The cells are fixed before the data (the target is *not* picked as the
    best cell by its own values, which would bias the gap). With d₁ₛ = tₛ − bₛ over the n₁
    seeds where both exist and d₂ₛ = mₛ − bₛ over n₂ seeds,

        Var d̄₁ = s₁²/n₁,  Var d̄₂ = s₂²/n₂,  Cov(d̄₁, d̄₂) = s₁₂·n₁₂/(n₁n₂)

    (s₁₂ the sample covariance over the n₁₂ seeds in both), f = d̄₁/d̄₂,
    se_f² = (Var d̄₁ − 2f·Cov + f²·Var d̄₂)/d̄₂², and D = d̄₁ − f₀d̄₂ with
    Var D = Var d̄₁ − 2f₀·Cov + f₀²·Var d̄₂, dof = min(n₁, n₂) − 1.
    """
    t, b, m = (np.asarray(v, dtype=float).ravel() for v in (treated, base, target))
    n = max(t.size, b.size, m.size)
    t, b, m = (np.pad(v, (0, n - v.size), constant_values=np.nan) for v in (t, b, m))
    d1, d2 = t - b, m - b
    k1, k2 = np.isfinite(d1), np.isfinite(d2)
    n1, n2 = int(k1.sum()), int(k2.sum())
    if n1 < 2 or n2 < 2:
        raise ValueError(f"gap_fraction needs at least 2 seeds with both cells; got {n1} and {n2}.")
    m1, m2 = float(d1[k1].mean()), float(d2[k2].mean())
    v1 = float(d1[k1].var(ddof=1)) / n1
    v2 = float(d2[k2].var(ddof=1)) / n2
    both = k1 & k2
    n12 = int(both.sum())
    cov = (float(np.cov(d1[both], d2[both], ddof=1)[0, 1]) * n12 / (n1 * n2)) if n12 >= 2 else 0.0
    f = m1 / m2
    se_f = float(np.sqrt(max(0.0, v1 - 2 * f * cov + f * f * v2)) / abs(m2))
    contrast = m1 - f0 * m2
    se_c = float(np.sqrt(max(0.0, v1 - 2 * f0 * cov + f0 * f0 * v2)))
    return GapFraction(float(f), se_f, float(contrast), se_c, min(n1, n2) - 1, float(f0), n1, n2)


def weighted_mean(values, se) -> tuple[float, float]:
    """Inverse-variance weighted mean Σw_i x_i/Σw_i, w_i = 1/se_i², and its standard
    error 1/√(Σw_i), for independent estimates x_i ± se_i of one quantity."""
    w = 1.0 / np.asarray(se, dtype=float) ** 2
    x = np.asarray(values, dtype=float)
    return float(np.sum(w * x) / np.sum(w)), float(1.0 / np.sqrt(np.sum(w)))


def pooled_sd(x, axis=-1) -> float:
    """Standard deviation within groups, pooled: √(mean over groups of s_g²), each s_g²
    the (n − 1)-variance along ``axis`` (e.g. seeds) of one group (e.g. one (T, B) pair).
    Equal group sizes assumed; NaNs ignored."""
    return float(np.sqrt(np.nanmean(np.nanvar(np.asarray(x, dtype=float), axis=axis, ddof=1))))


# ------------------------------------------------------------------ slopes


@dataclass(frozen=True)
class Slope:
    """A least-squares slope ``slope`` ± ``se`` (units of y per unit of x) and its
    intercept ± ``intercept_se`` (``None`` for a fit through the origin)."""

    slope: float
    se: float
    intercept: float | None = None
    intercept_se: float | None = None


def slope_se(x, y, *, sigma=None, groups=None, through_origin: bool = False) -> Slope:
    """Least-squares slope of y against x with its standard error.

    * ``sigma`` given (the standard error of each y_i): weighted fit, w_i = 1/σ_i²,
      slope = Σw(x−x̄_w)(y−ȳ_w)/Σw(x−x̄_w)², se = 1/√(Σw(x−x̄_w)²) (known errors),
      intercept se = √(1/Σw + x̄_w² se²);
      through the origin: slope = Σwxy/Σwx², se = 1/√(Σwx²).
    * ``groups`` given (a label per point; repeated runs at one x): ordinary fit whose
      error variance is the *pure error* Σ(y − ȳ_group)²/(n − n_groups), so that a
      curved mean does not inflate it: se = √(σ̂²/Σ(x−x̄)²).
    * neither: ordinary fit, σ̂² = Σ residual²/(n − 2) (n − 1 through the origin).

    Non-finite points are dropped.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    shape = np.broadcast_shapes(x.shape, y.shape)  # x, y, sigma, groups: any broadcastable shapes
    x, y = np.broadcast_to(x, shape).ravel(), np.broadcast_to(y, shape).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    if sigma is not None:
        w = 1.0 / np.broadcast_to(np.asarray(sigma, dtype=float), shape).ravel() ** 2
        keep &= np.isfinite(w)
        x, y, w = x[keep], y[keep], w[keep]
        if through_origin:
            sxx = np.sum(w * x * x)
            return Slope(float(np.sum(w * x * y) / sxx), float(1 / np.sqrt(sxx)), None)
        xm, ym = np.sum(w * x) / w.sum(), np.sum(w * y) / w.sum()
        sxx = np.sum(w * (x - xm) ** 2)
        b = float(np.sum(w * (x - xm) * (y - ym)) / sxx)
        return Slope(b, float(1 / np.sqrt(sxx)), float(ym - b * xm),
                     float(np.sqrt(1 / w.sum() + xm**2 / sxx)))
    g = None if groups is None else np.broadcast_to(np.asarray(groups), shape).ravel()[keep]
    x, y = x[keep], y[keep]
    if through_origin:
        sxx = x @ x
        b = float(x @ y / sxx)
        resid, dof, a = y - b * x, x.size - 1, None
    else:
        xc = x - x.mean()
        sxx = xc @ xc
        b = float(xc @ (y - y.mean()) / sxx)
        a = float(y.mean() - b * x.mean())
        resid, dof = y - a - b * x, x.size - 2
    if g is not None:
        labels, inv = np.unique(g, return_inverse=True)
        means = np.bincount(inv, y) / np.bincount(inv)
        resid, dof = y - means[inv], x.size - labels.size
    s2 = resid @ resid / dof
    a_se = None if a is None else float(np.sqrt(s2 * (1 / x.size + x.mean() ** 2 / sxx)))
    return Slope(b, float(np.sqrt(s2 / sxx)), a, a_se)


@dataclass(frozen=True)
class CommonSlope:
    """The slope shared by several strata (each with its own intercept) ± its standard error
    from the pure error within cells, and that error's degrees of freedom."""

    slope: float
    se: float
    dof: int


def common_slope(x, y, strata, cells) -> CommonSlope:
    """Least-squares slope of y on x with a free intercept per stratum (e.g. the slope of
    log B_opt on log ε, each training-set size N its own intercept), from repeated
    measurements (seeds) in cells (e.g. (ε, N)).

    The within-stratum fit: x and y centred on their stratum means, slope = Σx̃ỹ/Σx̃²;
    the error variance is the pure error s² = Σ(y − ȳ_cell)²/(n − n_cells), so a mean that is
    not exactly linear does not inflate it; se = √(s²/Σx̃²), dof = n − n_cells. Non-finite
    points are dropped. Units: y per unit of x.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    strata, cells = np.asarray(strata).ravel(), np.asarray(cells).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, strata, cells = x[keep], y[keep], strata[keep], cells[keep]

    def centred(v, labels):
        _, inv = np.unique(labels, return_inverse=True)
        return v - (np.bincount(inv, v) / np.bincount(inv))[inv]

    xs, ys = centred(x, strata), centred(y, strata)
    sxx = float(xs @ xs)
    b = float(xs @ ys) / sxx
    n_cells = np.unique(cells).size
    dof = int(y.size - n_cells)
    if dof < 1 or sxx == 0:
        raise ValueError("the fit needs x to vary within a stratum and a cell with two points")
    resid = centred(y, cells)
    return CommonSlope(b, float(np.sqrt(resid @ resid / dof / sxx)), dof)


# ------------------------------------------------------------------ chi-square


@dataclass(frozen=True)
class ChiSquare:
    """χ² = Σ z_i² against its null distribution χ²_k: ``stat``, ``dof`` k, null mean k
    and standard deviation √(2k) (``null_sd``), the quantile ``bound`` at ``level`` and
    the p-value P(χ²_k ≥ stat)."""

    stat: float
    dof: int
    bound: float
    level: float

    @property
    def null_sd(self) -> float:
        return float(np.sqrt(2 * self.dof))

    @property
    def p_value(self) -> float:
        return float(_st.chi2.sf(self.stat, self.dof))

    @property
    def holds(self) -> bool:
        return self.stat <= self.bound


def chi_square(z, level: float = 0.997) -> ChiSquare:
    """χ² = Σ z_i² of k independent standard scores z_i = (measured − predicted)/se.

    Under the prediction χ² follows χ²_k (mean k, s.d. √(2k)); ``bound`` is its
    ``level`` quantile, so the claim "χ² ≤ bound" holds with probability ``level``.
    """
    z = np.asarray(z, dtype=float).ravel()
    return ChiSquare(float(np.sum(z**2)), int(z.size), float(_st.chi2.ppf(level, z.size)),
                     float(level))


def pearson_chi_square(counts, expected) -> ChiSquare:
    """Pearson's X² = Σ_b (O_b − E_b)²/E_b of K bins against the expected counts E_b.

    For n independent draws from the hypothesised law X² is approximately χ²_{K−1}
    (mean K − 1, s.d. √(2(K − 1))). ``bound`` is the 3-s.d. value K − 1 + 3√(2(K−1))
    (``level`` its χ² probability), the bound the book's histogram claims use.
    """
    o = np.asarray(counts, dtype=float)
    e = np.asarray(expected, dtype=float)
    k = o.size - 1
    bound = k + 3 * np.sqrt(2 * k)
    return ChiSquare(float(np.sum((o - e) ** 2 / e)), int(k), float(bound),
                     float(_st.chi2.cdf(bound, k)))


# ------------------------------------------------------------------ bootstrap


def bootstrap(x, statistic: Callable[[np.ndarray], float] = np.mean, n_boot: int = 1000,
              rng: np.random.Generator | int = 0) -> tuple[float, np.ndarray]:
    """Bootstrap standard error of ``statistic`` over the first axis of ``x`` (the
    independent units: replicas, seeds, subsets), and the replicates.

    Each replicate recomputes the statistic on n units drawn with replacement; the
    standard deviation of the replicates (n − 1) estimates the statistic's standard error.
    """
    x = np.asarray(x)
    rng = np.random.default_rng(rng)
    n = x.shape[0]
    reps = np.array([statistic(x[rng.integers(0, n, n)]) for _ in range(n_boot)], dtype=float)
    return float(np.std(reps, ddof=1)), reps


# ------------------------------------------------------------------ tolerances and rates



def two_sided_rate(z: float = Z_CLAIM, bias: float = 0.0) -> float:
    """``P(|Z + bias| ≤ z)``, Z ~ N(0, 1) = Φ(z − bias) − Φ(−z − bias).

    The rate at which a claim ``|measured − predicted| ≤ z·se`` holds when the estimate is
    Gaussian with standard error se and a known systematic offset ``bias`` (in units of
    se). With no bias and z = 3: 0.9973.
    """
    return float(_st.norm.cdf(z - bias) - _st.norm.cdf(-z - bias))


def one_sided_rate(z: float = Z_CLAIM, effect: float = 0.0) -> float:
    """P(Z + effect > z) = Φ(effect − z): the rate at which "measured > z·se" holds
    when the true value is ``effect`` standard errors above zero (the power of a
    one-sided z test). With effect = 0 it is the false-positive rate."""
    return float(_st.norm.cdf(effect - z))


def family_z(k: int, z: float = Z_CLAIM) -> float:
    """The score z_k for each of k two-sided claims such that the family fails by chance
    no more often than one z-score claim (Bonferroni):
    2Φ(−z_k) = 2Φ(−z)/k, i.e. z_k = Φ⁻¹(1 − Φ(−z)/k). k = 1 gives z; z = 3, k = 7: 3.55."""
    if k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    return float(_st.norm.isf(_st.norm.sf(z) / k))


def binomial_below(n_hold: int, n: int, rate: float) -> float:
    """One-sided binomial p-value P(X ≤ n_hold), X ~ Binomial(n, rate): how surprising it
    is that a claim with expected rate ``rate`` held only n_hold times in n runs."""
    return float(_st.binom.cdf(n_hold, n, rate))


def chi_square_power(bound: float, dof: int, noncentrality: float) -> float:
    """P(X² > bound) when X² is noncentral χ²_dof with noncentrality λ: the rate at which
    a wrong law q is rejected by Pearson's test of n draws from p, λ = n Σ_b (p_b − q_b)²/q_b.
    λ = 0 gives the false-rejection rate of the bound."""
    if noncentrality <= 0:
        return float(_st.chi2.sf(bound, dof))
    return float(_st.ncx2.sf(bound, dof, noncentrality))

__all__ = [
    "mean_se",
    "paired_difference",
    "seed_paired_sd",
    "Plateau",
    "plateau",
    "plateau_epoch",
    "plateau_settled_epoch",
    "difference_se",
    "GapFraction",
    "gap_fraction",
    "weighted_mean",
    "pooled_sd",
    "Slope",
    "slope_se",
    "CommonSlope",
    "common_slope",
    "ChiSquare",
    "chi_square",
    "pearson_chi_square",
    "bootstrap",
    "two_sided_rate",
    "one_sided_rate",
    "family_z",
    "binomial_below",
    "chi_square_power",
    "Z_CLAIM",
]
