"""``power_law.mean_first_passage_time`` against an independent solution, for each noise model.

The module integrates the radial stationary density twice (a double quadrature). Here
the same mean exit time comes from the backward equation instead: T(ρ) solves
D_r T'' + b T' = −1 with T'(0) = 0 (reflecting centre) and T(ρ_c) = 0, b = −hρ + (d−1)D_t/ρ
the Itô drift of the radius, so τ = T(0) = −∫₀^ρc T'(ρ) dρ with T' from an ODE solved by an
adaptive Runge–Kutta method. The diffusions are written out here from the docstring. Both
are approximations of the same exact number, so this is a check of the implementation:
agreement to 1e-8 relative (observed ≤ 5e-10, the trapezoid error of the quadrature's
200 001-point grid; the ODE is solved to rtol 1e-11).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from sgdtemp import power_law as pl


def diffusions(rho, h, L_star, T, model):
    """(D_r, D_t): T/2 × the radial and tangential variances of Σ = 2LH ("paper"),
    2LH + ∇L∇Lᵀ with ∇L = hρ r̂ ("gaussian") or 2L*H ("gibbs"), H = hI."""
    L = L_star + 0.5 * h * rho**2
    if model == "paper":
        return T * h * L, T * h * L
    if model == "gaussian":
        return T * (h * L + 0.5 * h**2 * rho**2), T * h * L
    return T * h * L_star, T * h * L_star


def exit_time_by_backward_ode(rho_c, h, L_star, T, dim, model):
    def rhs(rho, y):
        u = y[0]  # T'(ρ)
        Dr, Dt = diffusions(rho, h, L_star, T, model)
        b = -h * rho + (dim - 1) * Dt / rho
        return [-(1 + b * u) / Dr, -u]

    D0 = diffusions(0.0, h, L_star, T, model)[0]
    rho0 = 1e-7 * rho_c
    c = -1.0 / (dim * D0)  # T'(ρ) ≈ cρ near the centre, where D_t = D_r
    sol = solve_ivp(rhs, (rho0, rho_c), [c * rho0, -0.5 * c * rho0**2], method="DOP853",
                    rtol=1e-11, atol=1e-14)
    assert sol.success
    return sol.y[1, -1]


@pytest.mark.parametrize("model", pl.NOISE_MODELS)
@pytest.mark.parametrize("dim", [1, 3])
def test_quadrature_equals_the_backward_equation(model, dim):
    h, L_star, T = 1.7, 0.4, 0.5  # h ≠ 1, so that a misplaced h is visible
    levels = np.array([2.5, 4.0])
    rho_c = np.sqrt(2 * L_star * (levels - 1) / h)
    got = pl.mean_first_passage_time(levels, h, L_star, T, dim, model)
    want = [exit_time_by_backward_ode(r, h, L_star, T, dim, model) for r in rho_c]
    np.testing.assert_allclose(got, want, rtol=1e-8)


def test_default_model_is_the_papers_and_a_bad_one_is_named():
    lv = np.array([3.0])
    assert pl.mean_first_passage_time(lv, 1.3, 0.4, 0.2, 2) == \
        pl.mean_first_passage_time(lv, 1.3, 0.4, 0.2, 2, "paper")
    with pytest.raises(ValueError, match="model must be one of paper, gaussian, gibbs; got 'nope'"):
        pl.mean_first_passage_time(lv, 1.3, 0.4, 0.2, 2, "nope")
