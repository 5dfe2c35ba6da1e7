"""Do runs collapse onto one control variable (η/B), and where does the collapse break?

A grid of training runs varies the learning rate η and the batch size B, with several
seeds per cell. If the temperature T = η/B is what matters, a measurement y (a width
measure, an accuracy) depends on the cell only through T: cells of equal T agree within
the seed spread, and grouping the runs by T explains most of the variance of y.

* :func:`variance_explained`: R² = 1 − SS_within/SS_total of grouping by a label.
* :func:`equal_label_f_test`: the one-way F test of "cells sharing a label have equal
  means", against the pooled within-cell (seed) variance.
* :func:`breaking_point`: the first rescaling factor β whose runs leave β = 1 by more
  than the 3-standard-error criterion, with the seed noise taken from the β that have not
  broken.
* :func:`value_at_level`: where a curve (e.g. validation against training accuracy)
  first reaches a level, by linear interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from sgdtemp.stats.basic import seed_paired_sd
from sgdtemp.stats.decisions import Z_CLAIM, detectable_difference, t_multiplier


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
    error, and how many runs diverged; ``threshold`` the multiple of the standard error that
    counts as leaving β = 1 (:func:`~sgdtemp.stats.decisions.t_multiplier` of ``dof``); ``beta_star`` the first β > 1
    that leaves, or None; ``noise_betas`` the β whose runs the seed noise was estimated from
    (the unbroken ones, see :func:`breaking_point`); ``sd`` one run's seed-paired standard
    deviation."""

    betas: tuple[float, ...]
    difference: tuple[float, ...]
    se: tuple[float, ...]
    diverged: tuple[int, ...]
    dof: int
    threshold: float
    beta_star: float | None
    noise_betas: tuple[float, ...] = ()
    sd: float = float("nan")

    def detectable(self) -> float:
        """The 80%-power detectable ``|difference|`` at a β (noncentral t on ``dof``)."""
        return detectable_difference(self.se[-1], self.dof)


def breaking_point(betas, y, diverged=None, z: float = Z_CLAIM,
                   noise: tuple[float, int] | None = None) -> BreakingPoint:
    """The breaking point of (βη, βB) rescaling.

    ``y``: array (n_betas, n_seeds) of a per-run metric, seeds aligned across β (seed s has
    the same initial weights at every β); ``betas`` must contain 1; ``diverged`` (same shape,
    optional) marks runs that diverged. The paired differences d̄_β = mean_s (y_{β,s} − y_{1,s})
    share y_1, so their noise is taken from the additive model y_{β,s} = μ_β + σ_s + ε
    (:func:`sgdtemp.stats.basic.seed_paired_sd`): one run's seed-paired standard deviation s with
    dof = (C − 1)(S − 1) over C rows of β, and se_β = s·√(2/S).

    Which rows: only β that have not broken, so a broken β cannot inflate (or shrink) the
    noise it is judged against. Ascending in β, the noise is re-estimated on β ≤ β_k for
    each k (rows without divergence); the first k at which some β ≤ β_k leaves (``|d̄_β|`` >
    t·se_β, t = :func:`~sgdtemp.stats.decisions.t_multiplier` (dof), or a run diverged) ends the unbroken set at
    β_{k−1}. The final noise comes from that set (from β_1 and β_2 if it holds β_1 alone),
    and every β is judged with it; β* is the first β > 1 that leaves.

    ``noise`` = (s, dof): an independent estimate of one run's seed-paired standard
    deviation (needed with one seed a β), used instead: se_β = s·√(2/n_s).
    """
    betas = [float(b) for b in betas]
    y = np.asarray(y, dtype=float)
    bad = np.zeros(y.shape, bool) if diverged is None else np.asarray(diverged, bool)
    if 1.0 not in betas:
        raise ValueError(f"betas must include 1; got {betas!r}.")
    order = [int(i) for i in np.argsort(betas)]
    betas_s, ys, bads = [betas[i] for i in order], y[order], bad[order]
    n_s = y.shape[1]
    i1 = betas_s.index(1.0)
    d = ys - ys[i1]

    def judge(s: float, dof: int) -> tuple[list, list, list, float | None, float]:
        t = t_multiplier(dof, z) if dof else float("nan")
        diffs, ses, star = [], [], None
        for k in range(len(betas_s)):
            good = ~bads[k]
            diffs.append(float(np.mean(d[k][good])) if good.any() else float("nan"))
            n_good = max(1, int(good.sum()))
            ses.append(s * np.sqrt(2.0 / n_good))
            leaves = bads[k].any() or abs(diffs[-1]) > t * ses[-1]
            if star is None and betas_s[k] > 1 and leaves:
                star = betas_s[k]
        return diffs, ses, [int(b.sum()) for b in bads], star, t

    if noise is not None:
        s, dof = float(noise[0]), int(noise[1])
        rows = []
    else:
        clean = [k for k in range(len(betas_s)) if not bads[k].any() and k != i1]
        rows = [i1] + clean[:1]
        for k in clean[1:]:
            trial = rows + [k]
            s_t, dof_t = seed_paired_sd(ys[trial])
            *_, star_t, _ = judge(s_t, dof_t)
            if star_t is not None and star_t <= betas_s[k]:
                break
            rows = trial
        if len(rows) < 2:
            raise ValueError("breaking_point needs two β without divergence (β = 1 among them), "
                             "or an independent noise estimate")
        s, dof = seed_paired_sd(ys[rows])
    diffs, ses, n_bad, star, t = judge(s, dof)
    return BreakingPoint(tuple(betas_s), tuple(diffs), tuple(float(v) for v in ses), tuple(n_bad),
                         int(dof), float(t), star, tuple(betas_s[k] for k in rows), float(s))


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
