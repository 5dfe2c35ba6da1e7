"""Tests of sgdtemp.evidence: the Laplace evidence against exact results."""

import numpy as np
import pytest

from sgdtemp import evidence as ev
from sgdtemp import stats
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


def test_binary_task_pools_standardises_and_labels():
    rng = np.random.default_rng(9)
    x_tr = rng.integers(0, 256, (30, 5, 5)).astype(np.uint8)
    y_tr = rng.integers(0, 4, 30)
    x_te = rng.integers(0, 256, (12, 5, 5)).astype(np.uint8)
    y_te = rng.integers(0, 4, 12)
    F = ev.pooled_features(x_tr[:1], 2)
    assert F.shape == (1, 4)  # the odd last row and column are dropped
    assert F[0, 0] == pytest.approx(x_tr[0, :2, :2].astype(float).mean() / 255)
    X, s, Xt, st_ = ev.binary_task(x_tr, y_tr, x_te, y_te, (1, 3), 2)
    keep = np.isin(y_tr, (1, 3))
    assert X.shape == (keep.sum(), 5) and Xt.shape == (np.isin(y_te, (1, 3)).sum(), 5)
    np.testing.assert_array_equal(X[:, -1], 1.0)
    np.testing.assert_allclose(X[:, :-1].mean(0), 0, atol=1e-12)  # per-pixel mean removed
    np.testing.assert_array_equal(s, np.where(y_tr[keep] == 3, 1, -1))
    np.testing.assert_array_equal(st_, np.where(y_te[np.isin(y_te, (1, 3))] == 3, 1, -1))


def test_evidence_over_priors_matches_direct_fits():
    X_pool, s_pool = _logistic_data(10, n=200, d=5)
    X_test, s_test = _logistic_data(11, n=50, d=5)
    lams = np.array([0.01, 1.0, 100.0])
    res = ev.evidence_over_priors(X_pool, s_pool, X_test, s_test, lams, 40, 2, np.random.default_rng(0))
    assert res["real"]["logZ"].shape == (2, 3)
    # replay the draws: the random test labels first, then per subset its images and labels
    rng = np.random.default_rng(0)
    rng.choice([-1, 1], size=len(X_test))
    idx = rng.choice(len(X_pool), 40, replace=False)
    e = ev.logistic_evidence(X_pool[idx], s_pool[idx], lams[1])  # cold start: same minimum
    assert res["real"]["logZ"][0, 1] == pytest.approx(e.log_evidence, abs=1e-6)
    assert res["real"]["occam"][0, 1] == pytest.approx(e.occam, abs=1e-6)
    assert res["real"]["test_err"][0, 1] == np.mean(s_test * (X_test @ e.theta) <= 0)
    for kind in ("real", "random"):
        assert np.all(res[kind]["occam"] <= 0)
        assert np.all((res[kind]["train_err"] >= 0) & (res[kind]["train_err"] <= 1))


def test_spectrum_rank():
    rng = np.random.default_rng(12)
    X = rng.standard_normal((50, 3)) @ rng.standard_normal((3, 8))  # rank 3 in 8 columns
    rank, pr = ev.spectrum_rank(X)
    assert rank == 3 and 1 <= pr <= 3
    assert ev.spectrum_rank(np.eye(6))[1] == pytest.approx(6.0)


def _table(acc, lr=0.1, n=1000):
    """A run table for one cell: acc is seeds × batch sizes (B = 8, 16, ...)."""
    S, nb = acc.shape
    b = 8.0 * 2 ** np.arange(nb)
    return {"lr": np.full(S * nb, lr), "n_train": np.full(S * nb, float(n)),
            "momentum": np.zeros(S * nb), "batch_size": np.tile(b, S),
            "seed": np.repeat(np.arange(S, dtype=float), nb), "g": lr * n / np.tile(b, S),
            "acc": acc.ravel()}


def test_scan_curve_peaks_and_end_gaps():
    acc = np.array([[80.0, 84.0, 85.0, 82.0, 70.0], [81.0, 83.0, 86.0, 84.0, 69.0],
                    [79.0, 85.0, 84.5, 81.0, 71.0]])
    t = _table(acc)
    order = np.random.default_rng(0).permutation(acc.size)  # row order does not matter
    b, Y = ev.scan_curve({k: v[order] for k, v in t.items()}, 0.1, 1000)
    np.testing.assert_array_equal(b, [8, 16, 32, 64, 128])
    np.testing.assert_array_equal(Y, acc)
    pk = ev.seed_peaks(b, Y)
    assert np.all(pk[:, 1] == 0) and np.all((pk[:, 0] > np.log(8)) & (pk[:, 0] < np.log(128)))
    gaps = ev.end_gaps(Y)  # seed 0: the others' mean peaks at B = 32
    np.testing.assert_allclose(gaps[0], [85 - 80, 85 - 70])
    pk_end = ev.seed_peaks(b, np.array([[1.0, 2, 3, 4, 5]]))
    assert pk_end[0, 1] == 1 and pk_end[0, 0] == pytest.approx(np.log(128))


def test_combined_and_bounded_verdicts():
    assert stats.joint_verdict(["holds", "holds"]) == "holds"
    assert stats.joint_verdict(["holds", "unresolved"]) == "unresolved"
    assert stats.joint_verdict(iter(["unresolved", "fails"])) == "fails"
    assert ev.bounded_verdict("holds", (-0.1, 0.1), 0.5, None) == "holds"
    assert ev.bounded_verdict("fails", (0.6, 0.9), 0.5, "lower") == "fails"
    assert ev.bounded_verdict("fails", (0.6, 0.9), 0.5, "upper") == "unresolved"
    assert ev.bounded_verdict("holds", (-0.1, 0.1), 0.5, "lower") == "unresolved"


def test_peak_shift_and_noise_scale():
    inner = np.array([(0, 0, 0, 1.0, 0), (0, 0, 0, 2.0, 0), (0, 0, 1, 4.0, 0), (0, 0, 1, 6.0, 0)])
    p1 = np.array([[3.0, 0], [4.0, 0]])
    p2 = np.array([[1.0, 0], [2.0, 0]])
    ps = ev.peak_shift(p1, p2, inner)
    s = np.sqrt((0.25 + 0.25 + 1 + 1) / 2)  # residuals ±0.5 and ±1, 4 peaks − 2 cells
    assert ps.shift == pytest.approx(2.0) and ps.dof == 2 and ps.bound is None
    assert ps.se == pytest.approx(s * np.sqrt(1 / 2 + 1 / 2))
    censored = ev.peak_shift(np.array([[3.0, 0], [5.0, 1]]), p2, inner)
    assert censored.bound == "lower" and censored.censored_1 == 1
    assert censored.shift == pytest.approx(4.0 - 1.5)
    rows = np.array([(np.log(0.1), np.log(1000), 0, np.log(25.0), 0)])
    assert np.exp(ev.log_noise_scale(rows))[0] == pytest.approx(4.0)


def test_noise_scale_at_optimum_reads_the_run_nearest_the_peak():
    inner = np.array([(0, 0, 0, 1.0, 0), (0, 0, 0, 2.0, 0), (0, 0, 1, 4.0, 0), (0, 0, 1, 6.0, 0)])
    peaks = np.array([[np.log(30.0), 0], [np.log(50.0), 0], [np.log(400.0), 1]])  # one censored

    def rec(b, bs, se):
        return {"config": {"batch_size": b}, "noise_scale": {"epoch": [0, 5], "b_simple": bs,
                                                             "b_simple_stderr": se}}
    recs = [rec(20, [1.0, 1.0], [1.0, 1.0]), rec(40, [100.0, 400.0], [10.0, 80.0]), rec(80, [5.0, 5.0], [1, 1])]
    out = ev.noise_scale_at_optimum(peaks, inner, recs)
    s = np.sqrt((0.25 + 0.25 + 1 + 1) / 2)  # as in peak_shift: 4 peaks − 2 cells
    assert out.batch_size == 40 and out.censored == 1 and out.dof == 2
    assert out.log_bopt == pytest.approx(np.log(np.sqrt(30.0 * 50.0)))
    assert out.se_log_bopt == pytest.approx(s / np.sqrt(2))
    assert out.log_ratio == pytest.approx(np.log(400.0 / np.sqrt(1500.0)))
    assert out.se == pytest.approx(np.hypot(s / np.sqrt(2), 0.2))
    with pytest.raises(ValueError, match="no interior peak"):
        ev.noise_scale_at_optimum(np.array([[np.log(400.0), 1]]), inner, recs)
    with pytest.raises(ValueError, match="noise-scale runs"):
        ev.noise_scale_at_optimum(peaks, inner, [{"config": {"batch_size": 40}}])


def test_doubling_steps_and_interior_rows():
    acc = np.array([[80.0, 84.0, 85.0, 82.0, 70.0], [82.0, 84.0, 87.0, 84.0, 72.0]])
    b, Y = ev.scan_curve(_table(acc), 0.1, 1000)
    steps = ev.g_doubling_steps({(0.1, 1000.0): (b, Y)})
    np.testing.assert_allclose(steps, [3.0, 2.0, 3.0, 12.0])  # seed means 81, 84, 86, 83, 71
    rows = ev.interior_optimum_rows({(0.1, 1000.0): (b, Y)}, 0.5, 20, 1.0)
    assert rows[0]["verdict"] == "holds" and rows[0]["n_B"] == 5 and rows[0]["interior"] == 2
    assert rows[0]["gap_lowB"] == pytest.approx(5.0)
    assert "holds" in ev.format_interior_rows(rows)
    cell, seed = ev.collapse_labels(_table(acc))
    assert cell[0] == "1000/3.644" and seed[-1] == "1000/1"


def test_run_table_reads_configs_noise_scale_and_window_accuracy():
    def rec(lr, n, m, b, seed, acc, diverged=False):
        return {"config": {"lr": lr, "n_train": n, "momentum": m, "batch_size": b, "seed": seed},
                "curves": {"test_acc": acc}, "diverged": diverged}
    t = ev.run_table([rec(0.1, 1000, 0.0, 10, 0, [0.5, 0.7, 0.9]),
                      rec(0.2, 2000, 0.5, 40, 1, [0.6, 0.6, 0.8]),
                      rec(0.1, 1000, 0.0, 10, 2, [0.5, 0.7], diverged=True)], window=2)
    np.testing.assert_allclose(t["g"][:2], [0.1 * 1000 / 10, 0.2 * 2000 / (0.5 * 40)])
    np.testing.assert_allclose(t["acc"][:2], [80.0, 70.0])  # percent, mean of the last 2 epochs
    assert np.isnan(t["acc"][2]) and list(t["seed"]) == [0, 1, 2]


def test_peak_rows_stack_every_seeds_peak_with_its_cell():
    b = np.array([8.0, 16, 32, 64])
    Y1 = np.array([[1.0, 3, 2, 0], [0.0, 1, 3, 2]])
    Y2 = np.array([[4.0, 3, 2, 1]])
    rows = ev.peak_rows({(0.1, 1000): (b, Y1), (0.2, 4000): (b, Y2)})
    assert rows.shape == (3, 5)
    np.testing.assert_allclose(rows[:, :3], [[np.log(0.1), np.log(1000), 0]] * 2
                               + [[np.log(0.2), np.log(4000), 1]])
    np.testing.assert_allclose(rows[:2, 3:], ev.seed_peaks(b, Y1))
    np.testing.assert_allclose(rows[2:, 3:], ev.seed_peaks(b, Y2))
