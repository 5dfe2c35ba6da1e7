"""Do runs collapse onto one control variable (η/B), and where does the collapse break?

A grid of training runs varies the learning rate η and the batch size B, with several
seeds per cell. If the temperature T = η/B is what matters, a measurement y (a width
measure, an accuracy) depends on the cell only through T: cells of equal T agree within
the seed spread, and grouping the runs by T explains most of the variance of y.

* :func:`variance_explained`: R² = 1 − SS_within/SS_total of grouping by a label.
* :func:`equal_label_f_test`: the one-way F test of "cells sharing a label have equal
  means", against the pooled within-cell (seed) variance.
* :func:`breaking_point`: the first rescaling factor β whose runs leave β = 1 by more
  than z paired standard errors.
* :func:`value_at_level`: where a curve (e.g. validation against training accuracy)
  first reaches a level, by linear interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

from sgdtemp.stats import Z_CLAIM, paired_difference


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
    """Per β: the paired difference (mean over seeds of y_β − y_1) and its standard error;
    ``beta_star`` the first β (ascending) with |difference| > z·se, or None if none."""

    betas: tuple[float, ...]
    difference: tuple[float, ...]
    se: tuple[float, ...]
    z: float
    beta_star: float | None


def breaking_point(betas, y, z: float = Z_CLAIM) -> BreakingPoint:
    """The breaking point of (βη, βB) rescaling.

    ``y``: array (n_betas, n_seeds) of a final metric, seeds aligned across β (seed s has
    the same initial weights at every β, so differencing by seed removes that part of the
    spread). ``betas`` must contain 1. β* is the first β > 1 whose paired difference from
    β = 1 exceeds z standard errors in absolute value.
    """
    betas = [float(b) for b in betas]
    y = np.asarray(y, dtype=float)
    ref = y[betas.index(1.0)]
    order = np.argsort(betas)
    diffs, ses, star = [], [], None
    for i in order:
        d, se = paired_difference(y[i], ref)
        diffs.append(d)
        ses.append(se)
        if star is None and betas[i] > 1 and abs(d) > z * se:
            star = betas[i]
    return BreakingPoint(tuple(betas[i] for i in order), tuple(diffs), tuple(ses), z, star)


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
