"""Do runs collapse onto one control variable (η/B), and where does the collapse break?

A grid of training runs varies the learning rate η and the batch size B, with several
seeds per cell. If the temperature T = η/B is what matters, a measurement y (a width
measure, an accuracy) depends on the cell only through T: cells of equal T agree within
the seed spread, and grouping the runs by T explains most of the variance of y.

* :func:`variance_explained`: R² = 1 − SS_within/SS_total of grouping by a label.
* :func:`equal_label_f_test`: the one-way F test of "cells sharing a label have equal
  means", against the pooled within-cell (seed) variance.
* :func:`breaking_point`: the first rescaling factor β whose runs leave β = 1 by more
  than the 3-standard-error criterion, with the seed spread pooled over β.
* :func:`t_multiplier`: the Student-t multiple of a standard error that keeps the
  two-sided rate of "3 standard errors" when the standard error comes from few seeds.
* :func:`value_at_level`: where a curve (e.g. validation against training accuracy)
  first reaches a level, by linear interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from sgdtemp.stats import Z_CLAIM


def t_multiplier(dof: int, z: float = Z_CLAIM) -> float:
    """t_dof⁻¹(Φ(z)): the multiple of an estimated standard error (from ``dof`` degrees of
    freedom) whose two-sided exceedance rate equals that of z known standard errors
    (0.27% for z = 3). With few seeds the plain z is far too lenient: at 2 degrees of
    freedom, ``|t| > 3`` happens 9.5% of the time; the multiplier is 19.2 there, 4.09 at 10,
    3.62 at 16, and tends to z as dof grows."""
    if dof < 1:
        raise ValueError(f"dof must be a positive integer; got {dof!r}")
    return float(_st.t.ppf(_st.norm.cdf(z), dof))


def variance_explained(y, labels) -> float:
    """R² = 1 − Σ_i (y_i − ȳ_{g(i)})² / Σ_i (y_i − ȳ)², the fraction of the variance of y
    that the group means of ``labels`` account for (1: y is a function of the label;
    NaN entries of y are left out). Dimensionless."""
    y = np.asarray(y, dtype=float).ravel()
    g = np.asarray(labels).ravel()
    keep = np.isfinite(y)
    y, g = y[keep], g[keep]
    _, inv = np.unique(g, return_inverse=True)
    means = np.bincount(inv, y) / np.bincount(inv)
    ss_total = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - means[inv]) ** 2)) / ss_total


@dataclass(frozen=True)
class FTest:
    """F = (between-cell mean square within labels) / (within-cell mean square), with its
    degrees of freedom and p-value P(F_{dof_between, dof_within} ≥ F)."""

    f: float
    dof_between: int
    dof_within: int
    p_value: float


def equal_label_f_test(y, cells, labels) -> FTest:
    """Test that cells sharing a label (e.g. (η, B) cells of equal T = η/B) have equal means.

    y: one value per run; cells: the run's cell; labels: the cell's label (per run).
    Between: Σ_cells n_c (ȳ_c − ȳ_{label(c)})², dof Σ_labels (cells in label − 1).
    Within: Σ_runs (y − ȳ_cell)², dof n_runs − n_cells (the seed spread, pooled).
    Labels with a single cell contribute to the within term only. NaNs are left out.
    """
    y = np.asarray(y, dtype=float).ravel()
    cells = np.asarray(cells).ravel()
    labels = np.asarray(labels).ravel()
    keep = np.isfinite(y)
    y, cells, labels = y[keep], cells[keep], labels[keep]
    cell_ids, cinv = np.unique(cells, return_inverse=True)
    n_c = np.bincount(cinv)
    m_c = np.bincount(cinv, y) / n_c
    lab_of_cell = np.array([labels[cinv == k][0] for k in range(len(cell_ids))])
    lab_ids, linv = np.unique(lab_of_cell, return_inverse=True)
    m_l = np.bincount(linv, m_c * n_c) / np.bincount(linv, n_c)
    ss_between = float(np.sum(n_c * (m_c - m_l[linv]) ** 2))
    dof_between = int(len(cell_ids) - len(lab_ids))
    ss_within = float(np.sum((y - m_c[cinv]) ** 2))
    dof_within = int(len(y) - len(cell_ids))
    if dof_between < 1 or dof_within < 1:
        raise ValueError("the test needs a label with two cells and a cell with two runs")
    f = (ss_between / dof_between) / (ss_within / dof_within)
    return FTest(float(f), dof_between, dof_within, float(_st.f.sf(f, dof_between, dof_within)))


@dataclass(frozen=True)
class BreakingPoint:
    """Per β (ascending): the paired difference (mean over seeds of y_β − y_1), its standard
    error from the pooled seed spread, and how many runs diverged; ``threshold`` the
    multiple of the standard error that counts as leaving β = 1 (:func:`t_multiplier` of
    ``dof``); ``beta_star`` the first β > 1 that leaves, or None."""

    betas: tuple[float, ...]
    difference: tuple[float, ...]
    se: tuple[float, ...]
    diverged: tuple[int, ...]
    dof: int
    threshold: float
    beta_star: float | None

    def detectable(self) -> float:
        """The smallest ``|difference|`` the test detects at a β: threshold × standard error."""
        return self.threshold * self.se[-1]


def breaking_point(betas, y, diverged=None, z: float = Z_CLAIM,
                   noise: tuple[float, int] | None = None) -> BreakingPoint:
    """The breaking point of (βη, βB) rescaling.

    ``y``: array (n_betas, n_seeds) of a final metric, seeds aligned across β (seed s has
    the same initial weights at every β, so differencing by seed removes that part of the
    spread); ``betas`` must contain 1; ``diverged`` (same shape, optional) marks runs that
    diverged. The paired differences d_{β,s} = y_{β,s} − y_{1,s} have a seed variance
    pooled over the β ≠ 1 without divergence, s² = Σ_β Σ_s (d − d̄_β)² / dof,
    dof = Σ_β (n_s − 1), so se_β = s/√n_s. A β leaves β = 1 when ``|d̄_β| > t·se_β``, t =
    :func:`t_multiplier` (dof) (the rate of a 3-s.e. test), or when any of its runs
    diverged. β* is the first β > 1 (ascending) that leaves.

    ``noise`` = (s₁, dof): an independent estimate of one run's seed-paired standard
    deviation (e.g. :func:`sgdtemp.stats.seed_paired_sd` of a grid run with the same seeds),
    used instead of the pooled spread of the differences (needed with one seed a β): then
    se_β = s₁·√(2/n_s), a difference of two runs each of variance s₁².
    """
    betas = [float(b) for b in betas]
    y = np.asarray(y, dtype=float)
    bad = np.zeros(y.shape, bool) if diverged is None else np.asarray(diverged, bool)
    i1 = betas.index(1.0)
    d = y - y[i1]
    ok = [i for i in range(len(betas)) if i != i1 and not bad[i].any()]
    dev = np.concatenate([d[i] - d[i].mean() for i in ok]) if ok else np.array([])
    dof = sum(y.shape[1] - 1 for _ in ok)
    s = float(np.sqrt(np.sum(dev**2) / dof)) if dof else float("nan")
    if noise is not None:  # s of a difference of two runs
        s, dof = float(noise[0]) * np.sqrt(2.0), int(noise[1])
    t = t_multiplier(dof, z) if dof else float("nan")
    order = np.argsort(betas)
    diffs, ses, n_bad, star = [], [], [], None
    for i in order:
        good = ~bad[i]
        diffs.append(float(np.mean(d[i][good])) if good.any() else float("nan"))
        ses.append(s / np.sqrt(max(1, int(good.sum()))))
        n_bad.append(int(bad[i].sum()))
        leaves = n_bad[-1] > 0 or abs(diffs[-1]) > t * ses[-1]
        if star is None and betas[i] > 1 and leaves:
            star = betas[i]
    return BreakingPoint(tuple(betas[i] for i in order), tuple(diffs), tuple(ses), tuple(n_bad),
                         dof, t, star)


def value_at_level(x, y, level: float) -> float:
    """y where the curve (x_k, y_k) first reaches x = ``level`` (x rising through it), by
    linear interpolation between the two points around the crossing; NaN if it never does."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    for k in range(len(x)):
        if x[k] >= level:
            if k == 0:
                return float(y[0])
            f = (level - x[k - 1]) / (x[k] - x[k - 1])
            return float(y[k - 1] + f * (y[k] - y[k - 1]))
    return float("nan")
