"""Where a measured curve peaks: the optimum of a quantity over a log-spaced grid.

Training runs scan one knob on a geometric grid (batch sizes 8, 16, 32, ...; learning rates
a factor 2 apart) and the question is where a measurement (test accuracy, minus the training
loss) is largest, with an uncertainty from the seeds.

* :func:`log_parabola_peak`: the vertex of the parabola through the grid maximum and its two
  neighbours, in log x (the three-point estimate of a smooth peak; exact for a curve that
  is quadratic in log x near its top). A maximum at either end of the grid is not an
  interior optimum and is returned as that end, flagged.
* :func:`peak_over_seeds`: the peak of each seed's curve, their mean in log x and its
  standard error over seeds, and the peak of the seed-mean curve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Peak:
    """``x``: where the curve peaks (the grid's units); ``interior``: whether the largest
    grid value has a neighbour on both sides (False: the optimum may lie off the grid)."""

    x: float
    interior: bool


def log_parabola_peak(x, y) -> Peak:
    """The peak of y over a grid of positive x, located in u = log x.

    With i the index of the largest y (grid sorted by x), the parabola through
    (u_{i−1}, y_{i−1}), (u_i, y_i), (u_{i+1}, y_{i+1}) has its vertex at::

        u* = u_i − ½ [a²(y_i − y_{i+1}) − b²(y_i − y_{i−1})] / [a(y_i − y_{i+1}) − b(y_i − y_{i−1})],
        a = u_i − u_{i−1},  b = u_i − u_{i+1},

    which lies in [u_{i−1}, u_{i+1}] because y_i is the largest of the three. Returns
    x* = exp(u*), in x's units. If i is the first or last point, x_i is returned with
    ``interior`` False; NaN values of y are not allowed (a diverged run has no value).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 3:
        raise ValueError(f"x and y must be 1-D of equal length ≥ 3; got shapes {x.shape} and {y.shape}")
    if not (np.all(x > 0) and np.all(np.diff(x) > 0)):
        raise ValueError("x must be positive and strictly increasing")
    if not np.all(np.isfinite(y)):
        raise ValueError("y must be finite (leave diverged runs out of the grid)")
    i = int(np.argmax(y))
    if i == 0 or i == len(x) - 1:
        return Peak(float(x[i]), False)
    u = np.log(x)
    a, b = u[i] - u[i - 1], u[i] - u[i + 1]
    fa, fb = y[i] - y[i + 1], y[i] - y[i - 1]
    den = a * fa - b * fb
    if den == 0:  # three equal values: a flat top, centred
        return Peak(float(x[i]), True)
    shift = 0.5 * (a * a * fa - b * b * fb) / den
    return Peak(float(math.exp(u[i] - shift)), True)


@dataclass(frozen=True)
class PeakEstimate:
    """The optimum over seeds. ``per_seed``: each seed's peak (x units; a seed whose curve
    peaks at a grid end gives that end, a bound, not an estimate); ``log_mean`` and
    ``log_se``: mean of log(peak) over seeds and its standard error s/√n (natural log, so
    log_se is a relative error); ``n_interior``: seeds whose peak is interior;
    ``n_low``/``n_high``: seeds censored at the low/high end of the grid; ``of_mean``: the
    peak of the seed-mean curve.

    With censored seeds the mean of the logs is not an estimate but a bound: censoring at
    the high end can only raise the true mean (``bound`` "lower": the optimum is at least
    x), at the low end only lower it ("upper"); with both, nothing is known (``bound``
    "none"); with none, ``bound`` is None and log_mean ± log_se is an estimate."""

    per_seed: tuple[float, ...]
    log_mean: float
    log_se: float
    n_interior: int
    of_mean: Peak
    n_low: int = 0
    n_high: int = 0

    @property
    def x(self) -> float:
        """The geometric mean of the seeds' peaks, exp(log_mean), in x's units."""
        return math.exp(self.log_mean)

    @property
    def censored(self) -> bool:
        return self.n_low + self.n_high > 0

    @property
    def bound(self) -> str | None:
        if not self.censored:
            return None
        if self.n_low and self.n_high:
            return "none"
        return "lower" if self.n_high else "upper"


def peak_over_seeds(x, y) -> PeakEstimate:
    """``y``: array (n_seeds, len(x)), one curve per seed over the grid x (NaN entries,
    e.g. diverged runs, cut a seed's curve to its finite part, which must keep ≥ 3 points
    and the grid's ends where the seed has values). Each seed's peak by
    :func:`log_parabola_peak`; the mean of their logarithms and its standard error (sample
    standard deviation over √n_seeds, n_seeds ≥ 2); seeds peaking at an end are counted as
    censored (see :class:`PeakEstimate`)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if y.ndim != 2 or y.shape[0] < 2:
        raise ValueError(f"y must be (n_seeds ≥ 2, n_x); got shape {y.shape}")
    peaks, low, high = [], 0, 0
    for row in y:
        ok = np.isfinite(row)
        p = log_parabola_peak(x[ok], row[ok])
        peaks.append(p)
        if not p.interior:
            if p.x <= x[ok][0]:
                low += 1
            else:
                high += 1
    logs = np.log([p.x for p in peaks])
    se = float(np.std(logs, ddof=1) / math.sqrt(len(logs)))
    mean_curve = np.nanmean(y, axis=0)
    ok = np.isfinite(mean_curve)
    return PeakEstimate(tuple(p.x for p in peaks), float(logs.mean()), se,
                        sum(p.interior for p in peaks), log_parabola_peak(x[ok], mean_curve[ok]),
                        low, high)
