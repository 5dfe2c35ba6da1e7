"""Expected test loss under a train/test shift, split into curvature terms.

Let the parameters be random with mean E[θ] and covariance S (for SGD: its stationary
law restricted to one basin), θ*_train the training minimum of that basin, θ*_test the
test minimum next to it and H the test Hessian there. With the *shift*
s = θ*_train − θ*_test and the *bias* b = E[θ] − θ*_train, expanding the test loss to
second order around θ*_test gives (Bradley et al., claim 1 of seed 000)

    E[L_test(θ)] ≈ L_test(θ*_test) + ½ sᵀHs + (sᵀHb + ½ bᵀHb) + ½ tr(HS)
                   test minimum   shift-curvature      bias          covariance

because θ − θ*_test = s + b + (θ − E[θ]) and the cross terms with the zero-mean part
vanish. The identity is exact for a quadratic test loss; otherwise the error is of third
order in the distance from θ*_test. The three curvature terms are invariant under a
linear reparametrisation θ = Aφ (H → AᵀHA, s → A⁻¹s, ...).

Units: losses; s, b in θ units; S in θ²; H in loss/θ².
"""

from __future__ import annotations

import numpy as np
from scipy.integrate import trapezoid


def expected_test_loss_terms(test_min_loss: float, hessian, shift, bias, covariance) -> dict:
    """The four terms of the expansion above and their sum.

    ``hessian`` (d, d) test Hessian at θ*_test; ``shift`` s and ``bias`` b (d,);
    ``covariance`` S (d, d). Scalars are accepted for d = 1. Returns a dict with
    ``test_minimum`` L_test(θ*_test), ``shift_curvature`` ½ sᵀHs, ``bias``
    sᵀHb + ½ bᵀHb, ``covariance`` ½ tr(HS) and ``total`` (their sum).
    """
    H = np.atleast_2d(np.asarray(hessian, dtype=float))
    s = np.atleast_1d(np.asarray(shift, dtype=float))
    b = np.atleast_1d(np.asarray(bias, dtype=float))
    S = np.atleast_2d(np.asarray(covariance, dtype=float))
    terms = {
        "test_minimum": float(test_min_loss),
        "shift_curvature": float(0.5 * s @ H @ s),
        "bias": float(s @ H @ b + 0.5 * b @ H @ b),
        "covariance": float(0.5 * np.trace(H @ S)),
    }
    terms["total"] = sum(terms.values())
    return terms


def density_moments(grid: np.ndarray, density: np.ndarray, mask=None) -> tuple[float, float, float]:
    """Mass, mean and variance of a 1-D density on ``grid`` restricted to ``mask``
    (a boolean array on the grid; all points if None). Trapezoid rule; the mean and
    variance are those of the restricted, renormalised density (θ and θ² units)."""
    x = np.asarray(grid, dtype=float)
    p = np.asarray(density, dtype=float)
    if mask is not None:
        p = np.where(mask, p, 0.0)
    m = trapezoid(p, x)
    mean = trapezoid(p * x, x) / m
    var = trapezoid(p * (x - mean) ** 2, x) / m
    return float(m), float(mean), float(var)


def expected_value(grid: np.ndarray, density: np.ndarray, values: np.ndarray, mask=None) -> float:
    """E_p[f] = ∫ p f dθ / ∫ p dθ over ``mask`` (all of the grid if None), trapezoid rule."""
    x = np.asarray(grid, dtype=float)
    p = np.asarray(density, dtype=float)
    if mask is not None:
        p = np.where(mask, p, 0.0)
    return float(trapezoid(p * np.asarray(values, dtype=float), x) / trapezoid(p, x))


def basin_decomposition_1d(grid, density, mask, test_min: float, test_min_loss: float,
                           test_curvature: float, train_min: float) -> dict:
    """:func:`expected_test_loss_terms` for one basin of a 1-D density: mean and variance
    of the density restricted to ``mask``, s = ``train_min`` − ``test_min``,
    b = E[θ | basin] − ``train_min``. Adds ``mass`` (the basin's probability)."""
    mass, mean, var = density_moments(grid, density, mask)
    terms = expected_test_loss_terms(test_min_loss, test_curvature, train_min - test_min,
                                    mean - train_min, var)
    terms["mass"] = mass
    return terms
