"""Tests of sgdtemp.noise_enhancement: exact identities exactly, one simulation statistically."""

import itertools

import numpy as np
import pytest
from scipy.linalg import solve_discrete_lyapunov

from sgdtemp import noise_enhancement as ne
from sgdtemp.dynamics import simulate_sgd
from sgdtemp.regression import LinearRegression


def _tiny(n=6, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return LinearRegression(rng.standard_normal((n, d)), rng.standard_normal(n))


@pytest.mark.parametrize("b_eff", [1, 2.5, 8, 16, 20, 40])
def test_alpha_for_effective_batch_inverts_the_factor(b_eff):
    a = ne.alpha_for_effective_batch(40, b_eff)
    assert a >= 0
    assert ne.effective_batch_size(40, a) == pytest.approx(b_eff, rel=1e-14)
    assert ne.enhancement_factor(0.5) == 2.5 and ne.effective_batch_size(40, 0.5) == 16


@pytest.mark.parametrize("replacement", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.3])
def test_enhanced_covariance_by_enumerating_all_pairs_of_minibatches(replacement, alpha):
    # Exact: every pair (batch 1, batch 2) of minibatches is equally likely and independent.
    p, B = _tiny(), 2
    theta = np.array([0.3, -0.4])
    if replacement:
        batches = list(itertools.product(range(6), repeat=B))      # ordered draws
    else:
        batches = list(itertools.combinations(range(6), B))        # simple random samples
    g = np.array([p.minibatch_grad(theta, np.array(b)) for b in batches])
    enhanced = ((1 + alpha) * g[:, None, :] - alpha * g[None, :, :]).reshape(-1, 2)
    mean = enhanced.mean(0)
    cov = (enhanced - mean).T @ (enhanced - mean) / enhanced.shape[0]
    np.testing.assert_allclose(mean, p.grad(theta), rtol=1e-13, atol=1e-15)
    predicted = ne.noise_scale(6, B, alpha, replacement=replacement) * p.noise_covariance(theta)
    np.testing.assert_allclose(cov, predicted, rtol=1e-12, atol=1e-15)


def test_stationary_covariance_solves_the_lyapunov_equation():
    p = LinearRegression.gaussian(50, 3, rng=1)
    eta, c = 0.3, 0.1
    S = ne.stationary_covariance(p, eta, c)
    H = p.hessian(p.minimizer())
    A = np.eye(3) - eta * H
    sigma = p.noise_covariance(p.minimizer())
    D = np.einsum("nd,ne->nde", p.X, p.X) - p.X.T @ p.X / 50
    mult = np.einsum("nij,jk,nkl->il", D, S, D) / 50
    np.testing.assert_allclose(S, A @ S @ A.T + eta**2 * c * (sigma + mult), rtol=1e-12, atol=1e-16)
    # Additive-only: the textbook discrete Lyapunov solution.
    np.testing.assert_allclose(ne.stationary_covariance(p, eta, c, multiplicative=False),
                               solve_discrete_lyapunov(A, eta**2 * c * sigma), rtol=1e-10, atol=1e-16)


@pytest.mark.parametrize("n_steps", [1, 2])
def test_expected_loss_curve_by_enumerating_all_minibatch_sequences(n_steps):
    # Exact: with B = 1 drawn with replacement (c = 1), E[L_k] is an average over the
    # N^k equally likely sequences of examples.
    p = _tiny(n=5)
    eta = 0.4
    theta0 = p.minimizer() + np.array([0.7, -0.3])
    L_star = p.loss(p.minimizer())
    vals = []
    for seq in itertools.product(range(5), repeat=n_steps):
        th = theta0.copy()
        for i in seq:
            th = th - eta * p.minibatch_grad(th, np.array([i]))
        vals.append(p.loss(th) - L_star)
    curve = ne.expected_excess_loss_curve(p, eta, 1.0, theta0, n_steps)
    assert curve[0] == pytest.approx(p.loss(theta0) - L_star, rel=1e-12)
    assert curve[n_steps] == pytest.approx(np.mean(vals), rel=1e-11)


def test_expected_loss_curve_converges_to_the_stationary_value():
    p = LinearRegression.gaussian(80, 2, rng=2)
    eta, c = 0.2, 1 / 8
    curve = ne.expected_excess_loss_curve(p, eta, c, p.minimizer() + 1.0, 2000)
    S = ne.stationary_covariance(p, eta, c)
    assert curve[-1] == pytest.approx(0.5 * np.trace(p.hessian(p.minimizer()) @ S), rel=1e-9)


def test_covariance_trace_estimate_is_the_sample_covariance_trace():
    g = np.random.default_rng(0).standard_normal((500, 3)) * [1, 2, 3]
    tr, se = ne.covariance_trace_estimate(g)
    assert tr == pytest.approx(np.trace(np.cov(g.T)), rel=1e-12)
    assert 0 < se < tr


def test_enhanced_sgd_stationary_loss_matches_exact_theory():
    # Simulation check. Per-replica time averages are independent across replicas, so
    # (mean − exact)/SE ≈ N(0, 1); |z| < 4 fails with probability 6e-5. The theory is
    # exact (discrete time, multiplicative noise and with-replacement sampling included).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 2)) * [1.0, 0.6]
    p = LinearRegression(X, X @ [1.0, -1.0] + 0.5 * rng.standard_normal(200))
    ts, eta, B, alpha = p.minimizer(), 0.3, 20, 1.0
    run = simulate_sgd(p, ts, eta, B, 700, n_replicas=300, replacement=True,
                       noise_enhancement=alpha, record_every=5, burn_in=100, seed=4)
    H = p.hessian(ts)
    d = run.snapshots - ts
    per = 0.5 * np.einsum("kri,ij,krj->kr", d, H, d).mean(0)
    exact = 0.5 * np.trace(H @ ne.stationary_covariance(
        p, eta, ne.noise_scale(200, B, alpha, replacement=True)))
    se = per.std(ddof=1) / np.sqrt(per.size)
    assert abs(per.mean() - exact) < 4 * se
    # And B_eff is what matters: the same exact value as plain SGD at B/5 = 4.
    assert exact == pytest.approx(0.5 * np.trace(H @ ne.stationary_covariance(p, eta, 1 / 4)), rel=1e-12)


def test_excess_loss_paths_and_stationary_loss_are_the_simulated_quadratic_form():
    p = LinearRegression.gaussian(60, 2, rng=3)
    ts = p.minimizer()
    kw = dict(n_replicas=7, alpha=0.5, seed=2, record_every=3, burn_in=6)
    paths = ne.excess_loss_paths(p, ts + 0.1, 0.2, 6, 30, **kw)
    run = simulate_sgd(p, ts + 0.1, 0.2, 6, 30, n_replicas=7, replacement=True,
                       noise_enhancement=0.5, record_every=3, burn_in=6, seed=2)
    expected = np.array([[p.loss(th) - p.loss(ts) for th in snap] for snap in run.snapshots])
    np.testing.assert_allclose(paths, expected, rtol=1e-9, atol=1e-14)
    m, se = ne.stationary_excess_loss(p, 0.2, 6, 0.5, n_steps=30, n_replicas=7, burn_in=6,
                                      record_every=3, seed=2)
    ref = ne.replica_mean_se(ne.excess_loss_paths(p, ts, 0.2, 6, 30, **kw))
    assert (m, se) == ref
    per = ne.excess_loss_paths(p, ts, 0.2, 6, 30, **kw).mean(0)
    assert se == pytest.approx(per.std(ddof=1) / np.sqrt(7), rel=1e-12)
    assert ne.stationary_excess_loss_theory(p, 0.2, 0.1) == pytest.approx(
        0.5 * np.trace(p.hessian(ts) @ ne.stationary_covariance(p, 0.2, 0.1)), rel=1e-14)


def test_ratio_mean_se_is_the_delta_method():
    rng = np.random.default_rng(1)
    a, b = 2.0 + 0.1 * rng.standard_normal(400), 4.0 + 0.2 * rng.standard_normal(900)
    r, se = ne.ratio_mean_se(a, b)
    assert r == pytest.approx(a.mean() / b.mean(), rel=1e-14)
    rel = np.sqrt((a.std(ddof=1) / np.sqrt(400) / a.mean()) ** 2 + (b.std(ddof=1) / np.sqrt(900) / b.mean()) ** 2)
    assert se == pytest.approx(r * rel, rel=1e-12)


def _cell(curves, diverged=False):
    return [{"curves": {"test_acc": list(c)}, "diverged": diverged} for c in curves]


def test_window_accuracy_reads_the_last_third_at_the_coarser_record_times():
    fine = _cell([np.arange(13) / 100, np.arange(13) / 50])     # 12 records after the first
    coarse = _cell([np.zeros(4), np.zeros(4)])                    # 3 records: every 4th
    assert ne.n_records(fine) == 12 and ne.n_records(coarse) == 3
    np.testing.assert_allclose(ne.window_accuracy(fine), [10.5, 21.0])   # mean of the last 4
    np.testing.assert_allclose(ne.window_accuracy(fine, like=coarse), [12.0, 24.0])  # the last one
    with pytest.raises(ValueError):
        ne.window_accuracy(_cell([np.zeros(6)]), like=_cell([np.zeros(5)]))


def test_collapse_coefficient_is_zero_when_only_b_eff_matters_and_finds_a_slope():
    rng = np.random.default_rng(0)
    seeds = rng.standard_normal(4)
    level = {8: 80.0, 16: 82.0, 32: 81.0}
    plain = {b: level[b] + seeds for b in level}
    assert ne.collapse_coefficient(plain, dict(plain), 64).value == pytest.approx(0, abs=1e-10)
    shifted = {b: level[b] + seeds + 0.5 * np.log2(64 / b) for b in level}
    assert ne.collapse_coefficient(plain, shifted, 64).value == pytest.approx(0.5, rel=1e-9)


def test_seeds_to_resolve_and_cpu_hours_per_seed():
    from sgdtemp import stats

    d = stats.equivalence(0.1, 0.5, 1.0, dof=3)
    target, n = ne.seeds_to_resolve(d, 4, 1, -1)
    assert target == 1.0 and n == stats.seeds_to_detect(1.0, 0.5, 4, 1, -1) and n > 4
    d = stats.directional(0.1, 0.5, 0.8, +1, dof=3)
    assert ne.seeds_to_resolve(d, 4, 1, -1)[0] == 0.8

    class Store:
        def entry(self, c):
            return {"provenance": {"cpu_time_s": c["cpu"], "group_size": 1}}

    cells = [[{"cpu": 3600}, {"cpu": 7200}], [{"cpu": 1800}, {"cpu": 1800}]]
    assert ne.cpu_hours_per_seed(Store(), cells, 2) == pytest.approx(2.0)
