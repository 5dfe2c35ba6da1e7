"""Tests of sgdtemp.modified_loss: exact identities exactly, one simulation statistically."""

import itertools

import numpy as np
import pytest

from sgdtemp import modified_loss as ml
from sgdtemp.regression import LinearRegression, LogisticRegression


def _problems(n=6, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = rng.standard_normal(n)
    return [LinearRegression(X, y, l2=0.1), LogisticRegression(X, (y > 0).astype(int), l2=0.1)]


ALL_ORDERINGS = np.array(list(itertools.permutations(range(6))))


@pytest.mark.parametrize("problem", _problems())
@pytest.mark.parametrize("batch_size", [1, 2, 3])
def test_expected_modified_loss_equals_average_over_all_orderings(problem, batch_size):
    # Exact: the mean of (ε/4m) Σ_k ||∇Ĉ_k||² over all 6! orderings is eq. E C_SGD.
    theta = np.array([0.3, -0.7, 0.5])
    lr = 0.2
    enumerated = np.mean([ml.sgd_modified_loss(problem, theta, lr, p.reshape(-1, batch_size))
                          for p in ALL_ORDERINGS])
    formula = ml.expected_sgd_modified_loss(problem, theta, lr, batch_size)
    assert enumerated == pytest.approx(formula, rel=1e-13, abs=1e-14)


def test_full_batch_modified_loss_is_gd_modified_loss():
    # B = N: one minibatch, the tr Σ term vanishes (κ_N = 0), C_SGD = C_GD exactly.
    p = _problems()[1]
    theta = np.array([0.1, 0.2, -0.3])
    full = np.arange(6).reshape(1, 6)
    assert ml.sgd_modified_loss(p, theta, 0.3, full) == pytest.approx(
        ml.gd_modified_loss(p, theta, 0.3), rel=1e-14)
    assert ml.expected_sgd_modified_loss(p, theta, 0.3, 6) == pytest.approx(
        ml.gd_modified_loss(p, theta, 0.3), rel=1e-14)


@pytest.mark.parametrize("problem", _problems())
def test_example_hessians_average_to_hessian(problem):
    theta = np.array([0.4, 0.1, -0.2])
    np.testing.assert_allclose(ml.example_hessians(problem, theta).mean(0),
                               problem.hessian(theta), rtol=1e-13, atol=1e-15)


def _central_difference(f, theta, h=1e-5):
    # Fourth-order central differences: truncation O(h⁴) ~ 1e-20, rounding ~ 1e-16/h ~ 1e-11.
    e = np.eye(theta.size)
    return np.array([(-f(theta + 2 * h * v) + 8 * f(theta + h * v) - 8 * f(theta - h * v)
                      + f(theta - 2 * h * v)) / (12 * h) for v in e])


@pytest.mark.parametrize("problem", _problems())
def test_gradients_match_finite_differences(problem):
    theta = np.array([0.3, -0.2, 0.6])
    lr, b = 0.15, 2
    part = ALL_ORDERINGS[17].reshape(-1, b)
    pairs = [
        (lambda t: ml.noise_trace(problem, t), lambda t: ml.noise_trace_grad(problem, t)),
        (lambda t: ml.grad_norm_sq(problem, t), lambda t: ml.grad_norm_sq_grad(problem, t)),
        (lambda t: ml.gd_modified_loss(problem, t, lr), lambda t: ml.gd_modified_loss_grad(problem, t, lr)),
        (lambda t: ml.expected_sgd_modified_loss(problem, t, lr, b),
         lambda t: ml.expected_sgd_modified_loss_grad(problem, t, lr, b)),
        (lambda t: ml.sgd_modified_loss(problem, t, lr, part),
         lambda t: ml.sgd_modified_loss_grad(problem, t, lr, part)),
    ]
    for f, grad in pairs:
        np.testing.assert_allclose(grad(theta), _central_difference(f, theta), rtol=0, atol=1e-9)


def test_modified_loss_gradients_broadcast_over_replicas():
    p = _problems()[1]
    thetas = np.random.default_rng(1).standard_normal((5, 3))
    part = ALL_ORDERINGS[3].reshape(-1, 3)
    batched = ml.sgd_modified_loss_grad(p, thetas, 0.1, part)
    for r in range(5):
        np.testing.assert_allclose(batched[r], ml.sgd_modified_loss_grad(p, thetas[r], 0.1, part),
                                   rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(ml.noise_trace_grad(p, thetas)[2], ml.noise_trace_grad(p, thetas[2]),
                               rtol=1e-13, atol=1e-15)


def test_epoch_with_one_batch_is_a_gradient_step():
    p = _problems()[0]
    theta = np.array([1.0, -1.0, 0.5])
    out = ml.shuffled_sgd_epoch(p, theta, 0.1, ALL_ORDERINGS[:4], 6)
    np.testing.assert_allclose(out, np.tile(theta - 0.1 * p.grad(theta), (4, 1)), rtol=1e-14)


def test_antithetic_orderings_are_permutations_with_reversed_batches():
    o = ml.random_orderings(np.random.default_rng(0), 10, 12, batch_size=3)
    assert o.shape == (10, 12)
    assert np.all(np.sort(o, 1) == np.arange(12))
    np.testing.assert_array_equal(o[5:].reshape(5, 4, 3), o[:5].reshape(5, 4, 3)[:, ::-1])


@pytest.mark.parametrize("problem", _problems())
def test_exact_mean_iterate_error_orders(problem):
    # Deterministic: the mean over ALL 720 orderings (no Monte Carlo) against the flows.
    # Halving ε divides the error of the C flow by ≈ 2² and of the E C_SGD flow by ≈ 2³;
    # the next order shifts log2 of the ratio by O(m ε λ) ≈ 0.1 at these ε, hence the margins.
    theta = np.array([0.8, -0.5, 0.4])
    errs = {"C": [], "C_SGD": []}
    for lr in (0.02, 0.01):
        mean = ml.shuffled_sgd_epoch(problem, theta, lr, ALL_ORDERINGS, 2).mean(0)
        flows = ml.flow_endpoints(problem, theta, lr, 2)
        for k in errs:
            errs[k].append(np.linalg.norm(mean - flows[k]))
    assert np.log2(errs["C"][0] / errs["C"][1]) == pytest.approx(2, abs=0.1)
    assert np.log2(errs["C_SGD"][0] / errs["C_SGD"][1]) == pytest.approx(3, abs=0.3)
    assert errs["C_SGD"][1] < 0.1 * errs["C"][1]


def test_monte_carlo_mean_iterate_matches_exact_enumeration():
    # Simulation check: 20 000 random (antithetic) orderings vs the exact mean over all 720.
    # Group means are independent, so (estimate − exact)/SE is ≈ N(0, 1) per coordinate;
    # |z| < 4.5 fails with probability < 1e-5 per coordinate (3 coordinates).
    p = _problems()[0]
    theta = np.array([0.8, -0.5, 0.4])
    lr = 0.2
    exact = ml.shuffled_sgd_epoch(p, theta, lr, ALL_ORDERINGS, 2).mean(0)
    groups = ml.epoch_group_means(p, theta, [lr], 2, 20_000, n_groups=20, seed=3)[:, 0]
    se = groups.std(0, ddof=1) / np.sqrt(groups.shape[0])
    assert np.all(np.abs(groups.mean(0) - exact) < 4.5 * se)
    assert np.all(se > 0)


def test_fit_error_order_recovers_exact_power_law():
    lr = np.geomspace(0.01, 0.1, 8)
    p, se = ml.fit_error_order(lr, 3.0 * lr**2.5 * np.exp(0.7 * lr), n_corrections=1)
    assert p == pytest.approx(2.5, abs=1e-10) and se < 1e-8


def test_jackknife_of_the_mean_is_the_standard_error():
    g = np.random.default_rng(0).standard_normal((12, 3))
    value, se = ml.jackknife(lambda m: m, g)
    np.testing.assert_allclose(value, g.mean(0), rtol=1e-14)
    np.testing.assert_allclose(se, g.std(0, ddof=1) / np.sqrt(12), rtol=1e-12)


def test_trace_coefficient_ratio_is_one_on_the_modified_flow():
    p = _problems()[0]
    theta = np.array([0.8, -0.5, 0.4])
    flows = ml.flow_endpoints(p, theta, 0.05, 2)
    assert ml.trace_coefficient_ratio(flows["C_SGD"], flows) == pytest.approx(1.0, abs=1e-12)
    assert ml.trace_coefficient_ratio(flows["C_GD"], flows) == pytest.approx(0.0, abs=1e-12)


def test_mean_iterate_se_is_the_norm_of_coordinate_standard_errors():
    g = np.random.default_rng(2).standard_normal((10, 4, 3))
    expected = np.linalg.norm(g.std(0, ddof=1) / np.sqrt(10), axis=-1)
    np.testing.assert_allclose(ml.mean_iterate_se(g), expected, rtol=1e-13)


def test_flow_error_order_recovers_the_order_of_a_synthetic_error():
    # Mean iterates at distance 2 ε^2.5 from the target along a fixed direction, with group
    # noise 1e-9 of the smallest error: order 2.5, a tiny uncertainty, the errors returned.
    lrs = np.geomspace(0.01, 0.1, 6)
    target = np.random.default_rng(0).standard_normal((6, 3))
    u = np.array([0.6, 0.8, 0.0])
    exact = target + (2 * lrs**2.5)[:, None] * u
    noise = 1e-9 * 2 * lrs[0] ** 2.5 * np.random.default_rng(1).standard_normal((8, 6, 3))
    flows = [{"C": t} for t in target]
    p, se, err = ml.flow_error_order(lrs, exact + noise, flows, "C")
    assert p == pytest.approx(2.5, abs=1e-6) and se < 1e-5
    np.testing.assert_allclose(err, 2 * lrs**2.5, rtol=1e-7)


def test_extrapolated_trace_ratio_of_a_linear_rho_is_its_intercept():
    # Mean iterates at ω_GD + ρ(ε) Δ with ρ(ε) = 1 + 3ε exactly: ρ(0) = 1, no spread.
    lrs = np.array([0.01, 0.02, 0.04, 0.08])
    rng = np.random.default_rng(4)
    flows = [{"C_GD": rng.standard_normal(3), "C_SGD": rng.standard_normal(3)} for _ in lrs]
    means = np.stack([f["C_GD"] + (1 + 3 * e) * (f["C_SGD"] - f["C_GD"]) for e, f in zip(lrs, flows)])
    s = ml.extrapolated_trace_ratio(lrs, np.stack([means] * 5), flows)
    np.testing.assert_allclose(s["rho"], 1 + 3 * lrs, rtol=1e-12)
    assert s["rho0"] == pytest.approx(1.0, abs=1e-10) and s["se"] < 1e-10


def test_window_mean_table_places_runs_by_cell_and_seed():
    recs = [{"config": {"lr": lr, "seed": 5 + s}, "diverged": lr == 0.4 and s == 1,
             "curves": {"test_acc": [0.0, 10 * lr + s, 10 * lr + s + 0.5]}}
            for lr in (0.1, 0.4) for s in (0, 1)]
    t = ml.window_mean_table(recs[:3], "test_acc", "lr", [0.1, 0.2, 0.4], n_seeds=3,
                             first_seed=5, window=2)
    expected = np.full((3, 3), np.nan)
    expected[0, :2] = [1.25, 2.25]
    expected[2, 0] = 4.25
    np.testing.assert_array_equal(t, expected)
    assert np.isnan(ml.window_mean_table(recs, "test_acc", "lr", [0.1, 0.4], n_seeds=2,
                                         first_seed=5, window=2)[1, 1])  # diverged


def test_extra_cpu_hours_prices_missing_seeds_at_the_cell_mean():
    class Store:
        def entry(self, c):
            return {"provenance": {"cpu_time_s": c["cpu"]}}

    arms = {"plain": [{"lr": 0.1, "cpu": 3600.0}, {"lr": 0.1, "cpu": 7200.0}, {"lr": 0.2, "cpu": 3600.0}],
            "regularized": [{"grad_penalty": 0.01, "cpu": 1800.0}]}
    # lr 0.1: 2 seeds at 1.5 h mean, 2 more = 3 h; penalty 0.01: 1 seed at 0.5 h, 3 more = 1.5 h.
    assert ml.extra_cpu_hours(Store(), arms, 4, [("plain", 0.1), ("regularized", 0.01)]) == \
        pytest.approx(4.5, rel=1e-12)
    assert ml.extra_cpu_hours(Store(), arms, 1, [("plain", 0.2)]) == 0.0
