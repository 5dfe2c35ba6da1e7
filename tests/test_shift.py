"""Tests of sgdtemp.shift: the test-loss decomposition is exact for a quadratic test loss."""

import numpy as np
import pytest

from sgdtemp.shift import (basin_decomposition_1d, density_moments, expected_value,
                           expected_test_loss_terms)


def random_spd(rng, d):
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.5 * np.eye(d)


def test_decomposition_equals_quadratic_expectation():
    rng = np.random.default_rng(0)
    d = 4
    H, S = random_spd(rng, d), random_spd(rng, d) * 0.1
    t_test, t_train, mean = rng.normal(size=(3, d))
    L0 = 0.7
    terms = expected_test_loss_terms(L0, H, t_train - t_test, mean - t_train, S)
    # E[L0 + ½(θ−θ*)ᵀH(θ−θ*)] for θ with mean μ, covariance S: L0 + ½(μ−θ*)ᵀH(μ−θ*) + ½ tr(HS).
    exact = L0 + 0.5 * (mean - t_test) @ H @ (mean - t_test) + 0.5 * np.trace(H @ S)
    assert terms["total"] == pytest.approx(exact, rel=1e-13)
    s = t_train - t_test
    assert terms["shift_curvature"] == pytest.approx(0.5 * s @ H @ s, rel=1e-13)
    assert sum(v for k, v in terms.items() if k != "total") == pytest.approx(terms["total"], rel=1e-14)


def test_decomposition_matches_monte_carlo_exactly_in_expectation():
    # With samples, the identity holds exactly for the sample mean and (biased) covariance.
    rng = np.random.default_rng(1)
    d = 3
    H = random_spd(rng, d)
    t_test, t_train = rng.normal(size=(2, d))
    th = rng.normal(size=(500, d)) * 0.3 + 1.0
    loss = 0.2 + 0.5 * np.einsum("ni,ij,nj->n", th - t_test, H, th - t_test)
    mu = th.mean(0)
    S = np.cov(th.T, bias=True)
    terms = expected_test_loss_terms(0.2, H, t_train - t_test, mu - t_train, S)
    assert terms["total"] == pytest.approx(loss.mean(), rel=1e-12)


def test_curvature_terms_invariant_under_reparametrisation():
    rng = np.random.default_rng(2)
    d = 3
    H, S = random_spd(rng, d), random_spd(rng, d)
    s, b = rng.normal(size=(2, d))
    A = rng.normal(size=(d, d)) + 2 * np.eye(d)  # θ = A φ
    Ai = np.linalg.inv(A)
    t1 = expected_test_loss_terms(0.0, H, s, b, S)
    t2 = expected_test_loss_terms(0.0, A.T @ H @ A, Ai @ s, Ai @ b, Ai @ S @ Ai.T)
    for k in ("shift_curvature", "bias", "covariance"):
        assert t2[k] == pytest.approx(t1[k], rel=1e-10)


def test_scalars_accepted_in_one_dimension():
    t = expected_test_loss_terms(1.0, 2.0, 0.5, -0.1, 0.04)
    assert t["shift_curvature"] == pytest.approx(0.25)
    assert t["bias"] == pytest.approx(2 * 0.5 * -0.1 + 0.5 * 2 * 0.01)
    assert t["covariance"] == pytest.approx(0.04)


def test_basin_decomposition_on_a_gaussian_density():
    # A Gaussian on a wide fine grid: trapezoid moments are exact to ~1e-12, and for a
    # quadratic test loss the decomposition equals the integral.
    grid = np.linspace(-12, 12, 20001)
    m, sd = 0.3, 0.7
    p = np.exp(-0.5 * ((grid - m) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))
    mass, mean, var = density_moments(grid, p)
    assert mass == pytest.approx(1, abs=1e-12)
    assert mean == pytest.approx(m, abs=1e-12) and var == pytest.approx(sd ** 2, abs=1e-12)
    k, t_test, t_train, L0 = 3.0, 0.1, 0.25, -0.4
    Lt = L0 + 0.5 * k * (grid - t_test) ** 2
    terms = basin_decomposition_1d(grid, p, np.ones_like(grid, bool), t_test, L0, k, t_train)
    assert terms["total"] == pytest.approx(expected_value(grid, p, Lt), abs=1e-11)
    # Restricting to half the line renormalises: the mass is 1/2 for a mask at the mean.
    half = grid > m
    assert density_moments(grid, p, half)[0] == pytest.approx(0.5, abs=1e-3)
    assert expected_value(grid, p, grid, half) > m
