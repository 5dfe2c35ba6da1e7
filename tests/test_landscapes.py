"""Exact derivatives of the finite-sum problems, checked to rounding."""

import numpy as np
import pytest

from sgdtemp.landscapes import NoisyPotential, minibatch_covariance
from sgdtemp.regression import LinearRegression, LogisticRegression


def fd_grad(f, x, h=1e-6):
    """Central differences: error O(h²) ≈ 1e-12 relative for these smooth losses."""
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e[k] = h
        g[k] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def problems():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    yield LinearRegression(X, X @ [1.0, -2.0, 0.5] + rng.standard_normal(40), l2=0.1)
    yield LogisticRegression(X, rng.integers(0, 2, 40), l2=0.05)
    yield NoisyPotential(lambda t: 0.5 * (t**2).sum(-1), lambda t: t, [0.7, 0.3, 1.1],
                         [0.1, -0.2, 0.0], [1.0, 0.5, 2.0], 64,
                         d2potential=lambda t: np.broadcast_to(np.eye(3), t.shape[:-1] + (3, 3)))


@pytest.mark.parametrize("p", list(problems()), ids=["linear", "logistic", "noisy"])
def test_gradient_hessian_and_noise_are_exact(p):
    theta = np.array([0.3, -0.7, 0.2])
    np.testing.assert_allclose(p.grad(theta), fd_grad(p.loss, theta), rtol=1e-6, atol=1e-8)
    H_fd = np.stack([fd_grad(lambda t: p.grad(t)[k], theta) for k in range(3)])
    np.testing.assert_allclose(p.hessian(theta), H_fd, rtol=1e-5, atol=1e-7)
    g = p.example_grads(theta)
    direct = np.cov(g.T, bias=True)
    np.testing.assert_allclose(p.noise_covariance(theta), direct, rtol=1e-10, atol=1e-12)
    idx = np.array([[0, 5, 7], [1, 2, 3]])
    thetas = np.stack([theta, -theta])
    np.testing.assert_allclose(p.minibatch_grad(thetas, idx),
                               p.example_grads(thetas, idx).mean(-2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(p.loss(thetas), p.example_losses(thetas).mean(-1), rtol=1e-12)


def test_linear_minimizer_and_batched_shapes():
    p = next(problems())
    t = p.minimizer()
    np.testing.assert_allclose(p.grad(t), 0, atol=1e-12)
    assert p.hessian(np.zeros((5, 4, 3))).shape == (5, 4, 3, 3)
    assert p.loss(np.zeros((5, 4, 3))).shape == (5, 4)


def test_noisy_potential_noise_is_the_stated_diagonal():
    p = list(problems())[2]
    theta = np.array([0.4, 1.5, -2.0])
    np.testing.assert_allclose(p.loss(theta), 0.5 * (theta**2).sum(), rtol=1e-12)
    s2 = np.array([0.7, 0.3, 1.1]) ** 2
    np.testing.assert_allclose(p.noise_covariance(theta), np.diag(s2 * p.dF(theta) ** 2),
                               rtol=1e-12, atol=1e-14)


def test_minibatch_covariance_without_replacement_by_enumeration():
    """Exact: the covariance over all C(N, B) subsets equals Σ/B·(N−B)/(N−1)."""
    from itertools import combinations

    rng = np.random.default_rng(1)
    g = rng.standard_normal((7, 2))
    sigma = np.cov(g.T, bias=True)
    means = np.array([g[list(c)].mean(0) for c in combinations(range(7), 3)])
    np.testing.assert_allclose(np.cov(means.T, bias=True), minibatch_covariance(sigma, 7, 3),
                               rtol=1e-12)
    np.testing.assert_allclose(minibatch_covariance(sigma, 7, 7), 0, atol=1e-15)


def test_logistic_labels_are_checked():
    with pytest.raises(ValueError):
        LogisticRegression(np.zeros((3, 2)), [0, 1, 2])
