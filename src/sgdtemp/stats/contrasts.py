"""One-degree-of-freedom contrasts: the tests of T-invariance, and window means.

If only the temperature T = η/B matters, a measurement y of a run depends on (η, B) only
through T. The sharpest test of that is one number: the coefficient c of log₂ η in

    y_r = a_{T(r)} + σ_{s(r)} + c·log₂ η_r + ε_r,

a free level a_T per temperature (so c compares runs of equal T reached with different η
and B), a free effect σ_s per seed (seed s has the same initial weights in every cell, so
its shared part cancels), and independent residuals ε. c is the change of y per doubling of
η (and of B) at fixed T; invariance predicts c = 0. An omnibus F test over all cells spends
its degrees of freedom on departures nobody predicted and misses this one-dimensional one.

* :func:`fixed_effects_coefficient`: the least-squares coefficient of one regressor with
  free levels for any number of factors, its standard error and residual degrees of freedom.
* :func:`invariance_contrast`: c above, per doubling of η at fixed T.
* :func:`nested_f_test`: F test of a larger linear model against a smaller nested one
  (e.g. log η + log B against log T alone), instead of comparing R² across groupings with
  different numbers of groups.
* :func:`window_mean`: the mean of a curve's last k points, the per-run value the network
  claims are judged on (a final iterate carries most of the seed noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st


@dataclass(frozen=True)
class Coefficient:
    """A regression coefficient ± its standard error, with the residual ``dof`` and the
    number of runs ``n`` it was fitted on. Units: y per unit of the regressor."""

    value: float
    se: float
    dof: int
    n: int


def _dummies(labels: np.ndarray, drop_first: bool) -> np.ndarray:
    _, inv = np.unique(labels, return_inverse=True)
    m = np.zeros((labels.size, inv.max() + 1))
    m[np.arange(labels.size), inv] = 1.0
    return m[:, 1:] if drop_first else m


def _design(x_columns: list[np.ndarray], factors: list[np.ndarray], n: int) -> np.ndarray:
    cols = [np.ones((n, 1))] if not factors else []
    for i, f in enumerate(factors):
        cols.append(_dummies(f, drop_first=i > 0))  # the first factor carries the intercept
    cols += [c.reshape(n, 1) for c in x_columns]
    return np.hstack(cols)


def _fit(y: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, float, int, np.ndarray]:
    """Least squares: coefficients, residual sum of squares, residual dof, (XᵀX)⁻¹ (pseudo)."""
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    rank = np.linalg.matrix_rank(X)
    resid = y - X @ beta
    xtx_inv = np.linalg.pinv(X.T @ X)
    return beta, float(resid @ resid), int(y.size - rank), xtx_inv


def _finite(y, *others):
    y = np.asarray(y, dtype=float).ravel()
    arrs = [np.asarray(o).ravel() for o in others]
    keep = np.isfinite(y)
    for a in arrs:
        if a.dtype.kind == "f":
            keep &= np.isfinite(a)
    return y[keep], [a[keep] for a in arrs]


def fixed_effects_coefficient(y, x, *factors) -> Coefficient:
    """The least-squares coefficient of ``x`` in y = Σ_factors (free level per label) + b·x + ε,
    with its standard error √(s²·[(XᵀX)⁻¹]_xx), s² = RSS/dof, dof = n − rank(X). ``y``, ``x``
    and each factor: one entry per run (factors: any labels). Rows with a non-finite y or x
    are left out. Raises ValueError when x is collinear with the factors (e.g. every level
    of T reached with a single η) or no residual degree of freedom is left."""
    y, (x, *fs) = _finite(y, x, *factors)
    n = y.size
    X = _design([x.astype(float)], [np.asarray(f) for f in fs], n)
    beta, rss, dof, xtx_inv = _fit(y, X)
    # x must carry information beyond the factors: its residual after them must not vanish.
    X0 = X[:, :-1]
    r = x - X0 @ np.linalg.lstsq(X0, x, rcond=None)[0]
    if r @ r <= 1e-12 * max(1.0, x @ x) or dof < 1:
        raise ValueError("the regressor does not vary within the factors' levels (or no degree "
                         "of freedom is left): the contrast is not estimable from these runs")
    s2 = rss / dof
    return Coefficient(float(beta[-1]), float(np.sqrt(s2 * xtx_inv[-1, -1])), dof, n)


@dataclass(frozen=True)
class FixedEffectsFit:
    """Coefficients of several regressors fitted together with free levels per factor:
    ``values`` (one per regressor), their covariance ``cov`` (s²·(XᵀX)⁻¹ restricted to
    them), the residual ``dof`` and the number of runs ``n``. Units: y per unit of each
    regressor."""

    values: np.ndarray
    cov: np.ndarray
    dof: int
    n: int


def fixed_effects_fit(y, columns, *factors) -> FixedEffectsFit:
    """The least-squares coefficients b_k in y = Σ_factors (free level per label) +
    Σ_k b_k·x_k + ε, for the regressors ``columns`` = [x_1, x_2, ...] together, with their
    covariance s²·[(XᵀX)⁻¹]_bb, s² = RSS/dof, dof = n − rank(X). Rows with a non-finite y or
    x_k are left out. E.g. log tr H = a_seed + p·log η + q·log B: is the law a function of
    η/B (q = −p)? Raises ValueError when no residual degree of freedom is left."""
    y, rest = _finite(y, *[np.asarray(x, dtype=float) for x in columns], *factors)
    xs, fs = rest[:len(columns)], rest[len(columns):]
    n, k = y.size, len(columns)
    X = _design([np.asarray(x, dtype=float) for x in xs], [np.asarray(f) for f in fs], n)
    beta, rss, dof, xtx_inv = _fit(y, X)
    if dof < 1:
        raise ValueError("no residual degree of freedom is left: the fit has as many "
                         "parameters as runs")
    s2 = rss / dof
    return FixedEffectsFit(beta[-k:].copy(), s2 * xtx_inv[-k:, -k:], dof, n)


def invariance_contrast(y, lr, batch_size, seed=None) -> Coefficient:
    """c, the change of y per doubling of η at fixed T = η/B (see the module docstring), from
    one value per run: ``lr``, ``batch_size``, ``seed`` (None: no seed effects). T is
    labelled by round(log₂ T, 6), so equal temperatures reached by different (η, B) share a
    level. Units: y per doubling of η (and of B)."""
    lr = np.asarray(lr, dtype=float).ravel()
    b = np.asarray(batch_size, dtype=float).ravel()
    t_label = np.round(np.log2(lr / b), 6)
    factors = [t_label] + ([np.asarray(seed).ravel()] if seed is not None else [])
    return fixed_effects_coefficient(y, np.log2(lr), *factors)


@dataclass(frozen=True)
class NestedF:
    """F = ((RSS_small − RSS_big)/Δdof) / (RSS_big/dof_big) with its degrees of freedom and
    p-value P(F ≥ f) under the smaller model."""

    f: float
    dof_num: int
    dof_den: int
    p_value: float


def nested_f_test(y, small: list, big: list, factors: tuple = ()) -> NestedF:
    """F test of the linear model with regressors ``big`` against the nested one with
    ``small`` (each a list of per-run arrays; both with an intercept and the free levels of
    ``factors``, e.g. the seed). Example: small = [log T], big = [log η, log B]: does
    splitting T into η and B explain more than T alone? (With two regressors and T = η/B
    this is the square of the t statistic of log η at fixed linear log T.)"""
    y, rest = _finite(y, *small, *big, *factors)
    n = y.size
    ks, kb = len(small), len(big)
    xs, xb, fs = rest[:ks], rest[ks:ks + kb], rest[ks + kb:]
    Xs = _design([np.asarray(c, float) for c in xs], [np.asarray(f) for f in fs], n)
    Xb = _design([np.asarray(c, float) for c in xb], [np.asarray(f) for f in fs], n)
    _, rss_s, dof_s, _ = _fit(y, Xs)
    _, rss_b, dof_b, _ = _fit(y, Xb)
    dnum = dof_s - dof_b
    if dnum < 1 or dof_b < 1:
        raise ValueError("the big model must have more (independent) regressors than the small one "
                         "and leave a residual degree of freedom")
    f = ((rss_s - rss_b) / dnum) / (rss_b / dof_b)
    return NestedF(float(f), int(dnum), int(dof_b), float(_st.f.sf(f, dnum, dof_b)))


def window_mean(curve, k: int) -> float:
    """Mean of the last ``k`` values of a curve (e.g. test accuracy after each of the last k
    epochs), NaN if the curve is shorter than k or has a non-finite value there. Averaging
    the last epochs removes most of the iterate-to-iterate noise that a final value carries."""
    if not (isinstance(k, (int, np.integer)) and k >= 1):
        raise ValueError(f"k must be a positive integer; got {k!r}.")
    c = np.asarray(curve, dtype=float).ravel()
    if c.size < k:
        return float("nan")
    tail = c[-k:]
    return float(tail.mean()) if np.all(np.isfinite(tail)) else float("nan")
