"""Which of two minima holds more stationary mass under isotropic noise, and when.

With isotropic, constant gradient noise the stationary density of the SGD diffusion is
the Gibbs density p(θ) ∝ exp(−L(θ)/n), with noise level n = D = ½ T σ² (T = η/B, σ² the
per-example gradient variance per direction; units of loss). Near a minimum θ_i with
loss L_i and Hessian H_i (d × d), Laplace's method gives the basin's mass

    M_i ≈ exp(−L_i/n) (2πn)^{d/2} (det H_i)^{−1/2},

so for a shallower but wider minimum w against a deeper, sharper one s
(ΔL = L_w − L_s > 0, det H_w < det H_s):

    M_w / M_s = exp(−ΔL/n) · (det H_s / det H_w)^{1/2},

which crosses 1 at the threshold

    n* = 2 ΔL / log(det H_s / det H_w),    T* = 2 n*/σ² = 4 ΔL / (σ² log(det H_s/det H_w)).

Below T* the deep minimum wins, above it the wide one: the depth counts through ΔL/n,
the width through det H — the product of *all* curvatures, not the top eigenvalue or the
trace. :class:`QuadraticWells` is a test bed where the Laplace picture can be checked
exactly: L is the lower of two quadratic wells, so exp(−L/n) can be integrated over
each basin on a grid without approximation beyond quadrature.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq


def laplace_mass_ratio(delta_loss: float, det_sharp: float, det_wide: float,
                       noise: float | np.ndarray) -> float | np.ndarray:
    """M_w/M_s = exp(−ΔL/n)·√(det H_s/det H_w) (Laplace; ΔL = L_w − L_s, n in loss units)."""
    n = np.asarray(noise, dtype=float)
    return np.exp(-delta_loss / n) * np.sqrt(det_sharp / det_wide)


def laplace_threshold_noise(delta_loss: float, det_sharp: float, det_wide: float) -> float:
    """n* = 2ΔL / log(det H_s / det H_w): the noise level at which the two masses are equal.

    Needs ΔL > 0 (the wide minimum is the shallower one) and det H_s > det H_w; otherwise one
    minimum wins at every noise level and there is no threshold (ValueError).
    """
    if not (delta_loss > 0 and det_sharp > det_wide > 0):
        raise ValueError("a threshold needs delta_loss > 0 and det_sharp > det_wide > 0")
    return 2.0 * delta_loss / float(np.log(det_sharp / det_wide))


@dataclass(frozen=True)
class QuadraticWells:
    """L(θ) = min(L_s + ½(θ−μ_s)ᵀH_s(θ−μ_s), L_w + ½(θ−μ_w)ᵀH_w(θ−μ_w)) in 2-D.

    Basin s is where the first quadratic is the lower one. ``loss_wide`` > ``loss_sharp``
    makes the wide minimum the shallower one.
    """

    center_sharp: tuple[float, float]
    hessian_sharp: tuple[tuple[float, float], tuple[float, float]]
    center_wide: tuple[float, float]
    hessian_wide: tuple[tuple[float, float], tuple[float, float]]
    loss_sharp: float = 0.0
    loss_wide: float = 0.1

    def _quadratics(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = []
        for c, H, L0 in ((self.center_sharp, self.hessian_sharp, self.loss_sharp),
                         (self.center_wide, self.hessian_wide, self.loss_wide)):
            dx, dy = X - c[0], Y - c[1]
            (a, b), (_, d) = H
            out.append(L0 + 0.5 * (a * dx * dx + 2 * b * dx * dy + d * dy * dy))
        return out[0], out[1]

    def loss(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        qs, qw = self._quadratics(X, Y)
        return np.minimum(qs, qw)

    def gradient(self, X: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """∇L of the lower well at each point (the two wells meet along a curve where L is
        continuous and its gradient jumps)."""
        qs, qw = self._quadratics(X, Y)
        sharp = qs <= qw
        gs, gw = [], []
        for c, H, g in ((self.center_sharp, self.hessian_sharp, gs), (self.center_wide, self.hessian_wide, gw)):
            dx, dy = X - c[0], Y - c[1]
            (a, b), (_, d) = H
            g += [a * dx + b * dy, b * dx + d * dy]
        return np.where(sharp, gs[0], gw[0]), np.where(sharp, gs[1], gw[1])

    def in_sharp_basin(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        qs, qw = self._quadratics(X, Y)
        return qs <= qw

    @property
    def delta_loss(self) -> float:
        return self.loss_wide - self.loss_sharp

    @property
    def det_sharp(self) -> float:
        return float(np.linalg.det(np.asarray(self.hessian_sharp)))

    @property
    def det_wide(self) -> float:
        return float(np.linalg.det(np.asarray(self.hessian_wide)))


def wide_basin_mass(wells: QuadraticWells, noise: float, grid: tuple[np.ndarray, np.ndarray]) -> float:
    """Fraction of the Gibbs density exp(−L/n) in the wide basin, by quadrature on ``grid``
    (two 1-D axes; the grid must cover both basins several √n wide)."""
    from sgdtemp.fokker_planck import gibbs_density

    x, y = grid
    X, Y = np.meshgrid(x, y, indexing="ij")
    # gibbs_density uses exp(−2L/(Tσ²)) = exp(−L/n) with Tσ² = 2n.
    p = gibbs_density((x, y), wells.loss(X, Y), 2.0 * noise)
    w = np.where(wells.in_sharp_basin(X, Y), 0.0, p)
    return float(np.trapezoid(np.trapezoid(w, y, axis=1), x) / np.trapezoid(np.trapezoid(p, y, axis=1), x))


def threshold_noise(wells: QuadraticWells, grid: tuple[np.ndarray, np.ndarray],
                    bracket: tuple[float, float]) -> float:
    """The noise level n at which the wide basin holds half the Gibbs mass, by root-finding
    on :func:`wide_basin_mass` within ``bracket`` (loss units)."""
    return float(brentq(lambda n: wide_basin_mass(wells, n, grid) - 0.5, *bracket, xtol=1e-12, rtol=1e-10))


def fp_wide_basin_mass(wells: QuadraticWells, noise: float, grid: tuple[np.ndarray, np.ndarray]) -> float:
    """The same fraction from the library's Fokker–Planck steady state on ``grid`` (cell
    centres), with isotropic diffusion D = n: an independent numerical route to the
    stationary density (finite volumes, no Gibbs form assumed)."""
    from sgdtemp.fokker_planck import fp_operator_2d, fp_steady_state

    x, y = grid
    op = fp_operator_2d(x, y, lambda X, Y: wells.gradient(X, Y), noise)
    p = fp_steady_state(op)
    X, Y = np.meshgrid(x, y, indexing="ij")
    return float(p[~wells.in_sharp_basin(X, Y)].sum() / p.sum())
