"""Tests of sgdtemp.dynamics: minibatch sampling, SGD and Euler–Maruyama against exact results."""

import numpy as np
import pytest

from sgdtemp.dynamics import euler_maruyama, minibatch_indices, simulate_sgd, stochastic_gradient
from sgdtemp.fokker_planck import sgd_stationary_covariance_discrete
from sgdtemp.landscapes import minibatch_covariance
from sgdtemp.regression import LinearRegression


# ------------------------------------------------------------------ minibatch indices
@pytest.mark.parametrize("n, b", [(40, 3), (12, 5), (9, 9)])  # sparse path, dense path, full batch
def test_minibatch_indices_without_replacement(n, b):
    rng = np.random.default_rng(0)
    R = 20000
    idx = minibatch_indices(rng, n, R, b, replacement=False)
    assert idx.shape == (R, b)
    assert idx.min() >= 0 and idx.max() < n
    s = np.sort(idx, axis=1)
    assert np.all(s[:, 1:] != s[:, :-1])  # distinct within every minibatch
    # Uniform marginals: each index is in a row with probability p = b/n, independently
    # across rows, so its count is Binomial(R, p). With n ≤ 40 indices, max |z| < 4.5
    # fails by chance with probability ≤ 40 · 6.8e-6 (and never at b = n, where sd = 0).
    counts = np.bincount(idx.ravel(), minlength=n)
    p = b / n
    sd = np.sqrt(R * p * (1 - p))
    if b == n:
        assert np.all(counts == R)
    else:
        assert np.max(np.abs(counts - R * p)) < 4.5 * sd


def test_minibatch_indices_with_replacement_uniform():
    rng = np.random.default_rng(1)
    R, n, b = 20000, 10, 4
    idx = minibatch_indices(rng, n, R, b, replacement=True)
    counts = np.bincount(idx.ravel(), minlength=n)
    p = 1 / n
    sd = np.sqrt(R * b * p * (1 - p))  # R·b independent uniform draws
    assert np.max(np.abs(counts - R * b * p)) < 4.5 * sd
    # Repeats do occur (P(a row of 4 distinct of 10) = 0.504), unlike without replacement.
    s = np.sort(idx, axis=1)
    assert (s[:, 1:] == s[:, :-1]).any(axis=1).mean() == pytest.approx(1 - 0.504, abs=0.02)


# ------------------------------------------------------------------ minibatch noise covariance
@pytest.mark.parametrize("replacement", [False, True])
def test_minibatch_gradient_covariance(replacement):
    problem = LinearRegression.gaussian(10, 2, noise_std=0.5, rng=4)
    theta = np.array([0.4, -0.3])
    n_draws, B = 40000, 3
    rng = np.random.default_rng(5)
    g = stochastic_gradient(problem, np.tile(theta, (n_draws, 1)), B, rng, replacement=replacement)
    dev = g - problem.grad(theta)  # the true mean is known: exact centring
    prods = np.einsum("ri,rj->rij", dev, dev)
    cov = prods.mean(0)
    se = prods.std(0, ddof=1) / np.sqrt(n_draws)  # draws are independent
    expected = minibatch_covariance(problem.noise_covariance(theta), 10, B, replacement)
    # 4 s.e. per entry (3 distinct entries): false-failure probability ~ 2e-4.
    assert np.all(np.abs(cov - expected) < 4 * se)
    other = minibatch_covariance(problem.noise_covariance(theta), 10, B, not replacement)
    assert np.any(np.abs(cov - other) > 4 * se)  # the finite-N factor (7/9) is resolved
    np.testing.assert_allclose(g.mean(0), problem.grad(theta), atol=4 * np.sqrt(np.diag(cov).max() / n_draws))


def test_noise_enhancement_covariance_factor():
    problem = LinearRegression.gaussian(50, 1, noise_std=0.5, rng=6)
    theta = np.array([0.2])
    n_draws, B, a = 40000, 5, 0.5
    g = stochastic_gradient(problem, np.tile(theta, (n_draws, 1)), B, np.random.default_rng(7),
                            replacement=True, noise_enhancement=a)
    var = ((g - problem.grad(theta)) ** 2).mean()
    se = ((g - problem.grad(theta)) ** 2).std(ddof=1) / np.sqrt(n_draws)
    expected = (1 + 2 * a + 2 * a**2) * problem.noise_covariance(theta)[0, 0] / B
    assert abs(var - expected) < 4 * se


# ------------------------------------------------------------------ SGD stationary variance
def test_sgd_stationary_variance_quadratic_finite_sum():
    # ℓ_i = ½ h (θ − c_i)² with a common h: the noise is additive and i.i.d. across steps,
    # so S = ηκC/(Bh(2 − ηh)) exactly (κ = (N−B)/(N−1) without replacement).
    rng = np.random.default_rng(8)
    N, B, lr, h = 20, 4, 0.3, 2.0
    problem = LinearRegression(np.full((N, 1), np.sqrt(h)), rng.standard_normal(N))
    theta_star = problem.minimizer()
    C = problem.noise_covariance(theta_star)[0, 0]
    S = lr * C * (N - B) / (N - 1) / (B * h * (2 - lr * h))
    assert S == pytest.approx(sgd_stationary_covariance_discrete(h, C, lr, B, N)[0, 0], rel=1e-12)
    run = simulate_sgd(problem, theta_star, lr, B, 600, n_replicas=3000, record_every=10,
                       burn_in=100, seed=1)
    dev2 = ((run.snapshots[..., 0] - theta_star[0]) ** 2).mean(0)  # one number per replica
    se = dev2.std(ddof=1) / np.sqrt(dev2.size)
    assert abs(dev2.mean() - S) < 4 * se  # replicas independent; P(false failure) ~ 6e-5


# ------------------------------------------------------------------ Euler–Maruyama
def test_euler_maruyama_ou_variance():
    # dθ = −kθ dt + σ dW; the EM chain θ' = (1 − kΔt)θ + σ√Δt z has exact stationary
    # variance σ²/(k(2 − kΔt)) (the continuous answer σ²/2k times 1/(1 − kΔt/2)).
    k, sigma, dt = 1.5, 0.8, 0.05
    run = euler_maruyama(lambda th: -k * th, lambda th: np.full_like(th, sigma), np.zeros(1), dt,
                         1200, n_replicas=4000, record_every=20, burn_in=200, seed=2)
    dev2 = (run.snapshots[..., 0] ** 2).mean(0)
    se = dev2.std(ddof=1) / np.sqrt(dev2.size)
    exact = sigma**2 / (k * (2 - k * dt))
    assert abs(dev2.mean() - exact) < 4 * se
    assert abs(dev2.mean() - sigma**2 / (2 * k)) > 4 * se  # the O(Δt) bias is resolved


def test_euler_maruyama_matrix_noise_covariance():
    # 2-D OU with full G: the EM chain's covariance solves S = A S Aᵀ + Δt G Gᵀ, A = I − Δt H.
    H = np.array([[1.0, 0.3], [0.3, 0.6]])
    G = np.array([[0.5, 0.0], [0.4, 0.3]])
    dt, R = 0.1, 4000
    run = euler_maruyama(lambda th: -th @ H.T, lambda th: np.broadcast_to(G, th.shape[:1] + G.shape),
                         np.zeros(2), dt, 1000, n_replicas=R, record_every=25, burn_in=200, seed=3)
    # Same recursion as SGD with η = Δt, B = 1 and noise covariance G Gᵀ/Δt.
    S = sgd_stationary_covariance_discrete(H, G @ G.T / dt, dt, 1)
    prods = np.einsum("kri,krj->rij", run.snapshots, run.snapshots) / run.snapshots.shape[0]
    se = prods.std(0, ddof=1) / np.sqrt(R)
    assert np.all(np.abs(prods.mean(0) - S) < 4 * se)


# ------------------------------------------------------------------ determinism
def test_same_seed_same_numbers():
    problem = LinearRegression.gaussian(30, 2, rng=0)
    kw = dict(n_replicas=50, record_every=5, seed=11)
    a = simulate_sgd(problem, np.zeros(2), 0.1, 4, 40, **kw)
    b = simulate_sgd(problem, np.zeros(2), 0.1, 4, 40, **kw)
    c = simulate_sgd(problem, np.zeros(2), 0.1, 4, 40, **{**kw, "seed": 12})
    assert np.array_equal(a.snapshots, b.snapshots) and np.array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, c.theta)
    em = lambda s: euler_maruyama(lambda th: -th, lambda th: 0.3 + 0 * th, np.ones(3), 0.01, 30,
                                  n_replicas=20, record_every=3, seed=s)
    assert np.array_equal(em(1).snapshots, em(1).snapshots)
    assert not np.array_equal(em(1).theta, em(2).theta)


def test_euler_maruyama_records_and_diverges():
    with np.errstate(over="ignore", invalid="ignore"):
        run = euler_maruyama(lambda th: th**3, lambda th: 0 * th, np.array([[1.0], [0.1]]), 0.5, 20,
                             record_every=4, burn_in=4, seed=0)
    assert list(run.steps) == [8, 12, 16, 20]
    assert run.snapshots.shape == (4, 2, 1)
    assert run.diverged.tolist() == [True, False]  # θ' = θ + θ³/2 blows up from 1, not from 0.1
