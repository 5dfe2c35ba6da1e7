"""Tests of sgdtemp.evidence: the Laplace evidence against exact results."""

import numpy as np
import pytest

from sgdtemp import evidence as ev
from sgdtemp.regression import LogisticRegression


def _linear_data(seed, n=40, d=5):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n)
    return X, y


@pytest.mark.parametrize("lam,noise_var", [(0.1, 0.25), (1.0, 1.0), (30.0, 2.0)])
def test_laplace_is_exact_for_bayesian_linear_regression(lam, noise_var):
    X, y = _linear_data(0)
    exact = ev.gaussian_linear_log_evidence(X, y, lam, noise_var)
    laplace = ev.gaussian_linear_laplace_log_evidence(X, y, lam, noise_var)
    assert laplace == pytest.approx(exact, rel=1e-12, abs=1e-9)


def test_occam_factor_is_half_sum_of_log_eigenvalue_ratios():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((6, 6))
    H = M @ M.T + 0.5 * np.eye(6)
    lam = 0.3
    expected = -0.5 * np.sum(np.log(np.linalg.eigvalsh(H) / lam))
    assert ev.occam_factor(H, lam) == pytest.approx(expected, rel=1e-12)
    assert ev.occam_factor(H, lam * np.eye(6)) == pytest.approx(expected, rel=1e-12)


def test_linear_evidence_is_invariant_to_reparametrization():
    """θ = Aθ': X' = XA, prior precision AᵀPA — the exact marginal likelihood is unchanged
    because y ~ N(0, σ²I + X P⁻¹ Xᵀ) and X'(AᵀPA)⁻¹X'ᵀ = X P⁻¹ Xᵀ."""
    X, y = _linear_data(2)
    rng = np.random.default_rng(3)
    A = rng.standard_normal((5, 5)) + 3 * np.eye(5)
    lam, s2 = 0.7, 0.5
    Xn, Pn = ev.reparametrized(X, lam, A)
    # Laplace with a general precision matrix, in the new coordinates
    H = Xn.T @ Xn / s2 + Pn
    th = np.linalg.solve(H, Xn.T @ y / s2)
    r = Xn @ th - y
    cost = r @ r / (2 * s2) + 0.5 * len(y) * np.log(2 * np.pi * s2) + 0.5 * th @ Pn @ th
    new = ev.laplace_log_evidence(cost, H, Pn)
    assert new == pytest.approx(ev.gaussian_linear_log_evidence(X, y, lam, s2), rel=1e-10)


def _logistic_data(seed, n=120, d=6):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    s = np.where(X @ rng.standard_normal(d) + 0.5 * rng.standard_normal(n) > 0, 1, -1)
    return X, s


def test_logistic_map_is_a_stationary_point_and_hessian_is_exact():
    X, s = _logistic_data(4)
    lam = 0.5
    e = ev.logistic_evidence(X, s, lam)
    prob = LogisticRegression(X, s, l2=lam / len(s))  # mean loss + (λ/2N)||θ||²
    assert np.abs(prob.grad(e.theta)).max() <= 1e-8
    np.testing.assert_allclose(e.hessian_sum, len(s) * prob.hessian(e.theta), rtol=1e-12, atol=1e-10)
    assert e.cost == pytest.approx(len(s) * float(prob.loss(e.theta)), rel=1e-12)
    assert e.log_evidence == pytest.approx(-e.cost + e.occam, rel=1e-14)


def test_logistic_evidence_is_invariant_to_reparametrization_but_trace_is_not():
    X, s = _logistic_data(5)
    lam = 2.0
    rng = np.random.default_rng(6)
    Q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    A = Q * np.exp(rng.uniform(-2, 2, 6))
    e0 = ev.logistic_evidence(X, s, lam)
    Xn, Pn = ev.reparametrized(X, lam, A)
    e1 = ev.logistic_evidence(Xn, s, Pn)
    # Newton stops at a decrement² below 1e-10 nats: the evidence agrees far better than 1e-7
    assert e1.log_evidence == pytest.approx(e0.log_evidence, abs=1e-7)
    np.testing.assert_allclose(e1.theta, np.linalg.solve(A, e0.theta), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(e1.data_hessian, A.T @ e0.data_hessian @ A, rtol=1e-6, atol=1e-8)
    ratio = np.trace(e1.data_hessian) / np.trace(e0.data_hessian)
    assert abs(ratio - 1) > 0.1


def test_exact_linear_evidence_against_monte_carlo():
    """Statistical check of the closed form: P(y|X) = E_{θ~prior}[P(y|X,θ)], estimated by
    averaging the likelihood over 200000 prior draws (1-D θ, 8 examples, so the likelihood
    is broad and the estimator's relative standard error is small). Tolerance: 4 standard
    errors of the log of the mean (delta method)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((8, 1))
    y = 0.8 * X[:, 0] + rng.standard_normal(8)
    lam, s2 = 1.0, 1.0
    th = rng.standard_normal(200_000) / np.sqrt(lam)
    r = X[:, 0][None, :] * th[:, None] - y[None, :]
    loglik = -0.5 * (r**2).sum(1) / s2 - 0.5 * len(y) * np.log(2 * np.pi * s2)
    w = np.exp(loglik - loglik.max())
    est = np.log(w.mean()) + loglik.max()
    se = w.std(ddof=1) / np.sqrt(w.size) / w.mean()
    assert abs(est - ev.gaussian_linear_log_evidence(X, y, lam, s2)) <= 4 * se
    assert se < 0.05  # the test has power


def test_laplace_logistic_evidence_against_importance_sampling():
    """For logistic regression Laplace is an approximation; with N = 400 and d = 2 its error
    is O(1/N) nats. Importance sampling from the Laplace Gaussian gives the exact log-evidence
    up to Monte Carlo error; the two agree within 4 s.e. plus 0.05 nats (the O(1/N) bound
    with a generous constant)."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((400, 2))
    s = np.where(X @ np.array([1.0, -0.5]) + rng.standard_normal(400) > 0, 1, -1)
    lam = 1.0
    e = ev.logistic_evidence(X, s, lam)
    cov = np.linalg.inv(e.hessian_sum)
    Lc = np.linalg.cholesky(cov)
    z = rng.standard_normal((100_000, 2))
    th = e.theta + z @ Lc.T
    prob = LogisticRegression(X, s)
    logprior = 0.5 * 2 * np.log(lam / (2 * np.pi)) - 0.5 * lam * (th**2).sum(1)
    loglik = -prob.example_losses(th).sum(1)
    logq = (-0.5 * (z**2).sum(1) - np.log(np.diag(Lc)).sum() - np.log(2 * np.pi))
    lw = loglik + logprior - logq
    w = np.exp(lw - lw.max())
    est = np.log(w.mean()) + lw.max()
    se = w.std(ddof=1) / np.sqrt(w.size) / w.mean()
    assert abs(est - e.log_evidence) <= 4 * se + 0.05


def test_separability_and_cover():
    from sgdtemp.evidence import cover_separable_probability, linearly_separable

    rng = np.random.default_rng(0)
    assert cover_separable_probability(10, 10) == 1.0
    assert abs(cover_separable_probability(40, 20) - 0.5) < 1e-12
    d = 10
    for n, expect in ((15, True), (40, None), (80, False)):
        X = rng.standard_normal((n, d))
        s = rng.choice([-1, 1], n)
        if expect is not None:
            assert linearly_separable(X, s) is expect
    # the rate over random labellings follows Cover's function
    n = 22
    hits = np.mean([linearly_separable(rng.standard_normal((n, d)), rng.choice([-1, 1], n))
                    for _ in range(300)])
    assert abs(hits - cover_separable_probability(n, d)) < 0.09
