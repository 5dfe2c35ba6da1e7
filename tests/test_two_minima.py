"""Tests of sgdtemp.two_minima: exact L, L', L'', Σ and a small SGD occupancy check."""

import numpy as np
import pytest
import torch

from sgdtemp.fokker_planck import mean_first_passage_time_1d, stationary_density_1d
from sgdtemp.landscapes import FiniteSumProblem
from sgdtemp.claims import ClaimsTable
from sgdtemp.two_minima import (ExactTheory, stationary_run, TwoMinimaProblem, TwoMinimaShape, basin_of,
                                chi_square_claim, crossing_temperature, decomposition_table,
                                make_two_minima_data, quadratic_split_error, with_shape)

SHAPE = TwoMinimaShape()


def torch_example_losses(theta, x, y, s=SHAPE):
    """ℓ_i(θ) = V(θ − x_i) + y_i f(θ), written independently in torch (float64)."""
    u = theta - x
    v = (0.5 * s.confinement * u ** 2
         - s.sharp_depth * torch.exp(-(u - s.sharp_center) ** 2 / (2 * s.sharp_width ** 2))
         - s.wide_depth * torch.exp(-(u - s.wide_center) ** 2 / (2 * s.wide_width ** 2)))
    f = theta + s.noise_gain * s.sharp_width * np.sqrt(np.pi / 2) * torch.special.erf(
        (theta - s.sharp_center) / (np.sqrt(2) * s.sharp_width))
    return v + y * f


@pytest.fixture(params=["equal_x", "spread_x"])
def problem(request):
    rng = np.random.default_rng(0)
    n = 300
    x = np.zeros(n) if request.param == "equal_x" else 0.1 * rng.standard_normal(n)
    y = 25.0 * rng.standard_normal(n)
    return TwoMinimaProblem(x, y, SHAPE)


def test_loss_and_derivatives_match_autograd(problem):
    theta = np.linspace(-3, 2, 41)
    th = torch.tensor(theta[:, None], dtype=torch.float64).expand(-1, problem.n_examples).clone()
    th.requires_grad_(True)
    x = torch.tensor(problem.x)
    y = torch.tensor(problem.y)
    per = torch_example_losses(th, x, y)  # (G, N): ℓ_i at each grid point
    (g_per,) = torch.autograd.grad(per.sum(), th, create_graph=True)  # ℓ_i'(θ_g)
    (h_per,) = torch.autograd.grad(g_per.sum(), th)  # ℓ_i''(θ_g)
    L = per.mean(1).detach().numpy()
    dL = g_per.mean(1).detach().numpy()
    d2L = h_per.mean(1).numpy()
    sig = g_per.var(1, unbiased=False).detach().numpy()
    ex = problem.exact_1d(theta)
    # Same sums in a different order: agreement to rounding (relative 1e-11 of the scale).
    np.testing.assert_allclose(ex["loss"], L, rtol=0, atol=1e-11 * np.abs(L).max())
    np.testing.assert_allclose(ex["dloss"], dL, rtol=0, atol=1e-11 * np.abs(g_per.detach().numpy()).max())
    np.testing.assert_allclose(ex["d2loss"], d2L, rtol=0, atol=1e-11 * np.abs(h_per.numpy()).max())
    np.testing.assert_allclose(ex["sigma"], sig, rtol=1e-10)


def test_sigma_equals_direct_per_example_covariance(problem):
    theta = np.linspace(-3, 2, 23)[:, None]
    direct = FiniteSumProblem.noise_covariance(problem, theta)[..., 0, 0]
    np.testing.assert_allclose(problem.noise_covariance(theta)[..., 0, 0], direct, rtol=1e-10)
    np.testing.assert_allclose(problem.sigma_1d(theta[:, 0]), direct, rtol=1e-10)


def test_fast_paths_equal_base_class(problem):
    rng = np.random.default_rng(1)
    theta = rng.normal(size=(50, 1))
    idx = rng.integers(0, problem.n_examples, size=(50, 7))
    np.testing.assert_allclose(problem.minibatch_grad(theta, idx),
                               FiniteSumProblem.minibatch_grad(problem, theta, idx), atol=1e-12)
    np.testing.assert_allclose(problem.loss(theta), FiniteSumProblem.loss(problem, theta), atol=1e-12)
    np.testing.assert_allclose(problem.grad(theta), FiniteSumProblem.grad(problem, theta), atol=1e-11)
    # The Hessian against a central difference of the exact gradient (error O(h²) ≈ 1e-8).
    h = 1e-5
    fd = (problem.dloss_1d(theta[:, 0] + h) - problem.dloss_1d(theta[:, 0] - h)) / (2 * h)
    np.testing.assert_allclose(problem.hessian(theta)[:, 0, 0], fd, atol=1e-6)


def test_basins_are_critical_points():
    data = make_two_minima_data(1000, 1000, 0, 0.6)
    b = data.train.basins()
    pts = np.array([b.sharp, b.barrier, b.wide])
    assert np.all(np.abs(data.train.dloss_1d(pts)) < 1e-10)
    assert b.curvature["sharp"] > b.curvature["wide"] > 0 > b.curvature["barrier"]
    assert b.sharp < b.barrier < b.wide
    assert b.loss["sharp"] < b.loss["wide"] < b.loss["barrier"]
    assert b.sigma["sharp"] > b.sigma["wide"]  # noise follows curvature
    assert basin_of(np.array([b.wide]), b.barrier, b.sharp)[0]
    assert not basin_of(np.array([b.sharp]), b.barrier, b.sharp)[0]


def test_data_are_centred_with_training_means_and_shifted():
    shape = with_shape(SHAPE, x_scale=0.1)
    data = make_two_minima_data(2000, 3000, 5, 0.6, shape)
    assert abs(data.train.x.mean()) < 1e-12 and abs(data.train.y.mean()) < 1e-12
    assert data.test.n_examples == data.test_shifted.n_examples == 3000
    # Test sets are independent draws: their means differ from zero by sampling only.
    assert abs(data.test.x.mean()) < 5 * 0.1 * np.sqrt(1 / 2000 + 1 / 3000)
    assert abs(data.test_shifted.x.mean() - 0.6) < 5 * 0.1 * np.sqrt(1 / 2000 + 1 / 3000)
    again = make_two_minima_data(2000, 3000, 5, 0.6, shape)
    np.testing.assert_array_equal(again.test.y, data.test.y)  # seeded


def test_bad_inputs_rejected():
    with pytest.raises(ValueError):
        TwoMinimaProblem(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError):
        make_two_minima_data(1, 10, 0)


def test_sgd_occupancy_matches_stationary_density():
    # T = 0.002: the relaxation time (about 1.5 SDE units) is short, so 8 of them cost
    # ~800 steps. The per-replica time-averaged occupancies are independent, so their
    # standard error is s/sqrt(R); 4 s.e. gives a false-alarm rate below 1e-4. The
    # first-order discretisation bias at η k_s ≈ 0.1 is below 0.01 (checked in the
    # chapter against smaller η) and is included in the bound.
    data = make_two_minima_data(20000, 10, 0, 0.0)
    p, b = data.train, data.train.basins()
    grid = np.linspace(-7, 6, 2000)
    ex = p.exact_1d(grid)
    T, B = 0.002, 8
    lr = T * B
    D = 0.5 * T * ex["sigma"]
    tau = 1 / (1 / mean_first_passage_time_1d(grid, ex["dloss"], D, b.sharp, b.wide)
               + 1 / mean_first_passage_time_1d(grid, ex["dloss"], D, b.wide, b.sharp))
    dens = stationary_density_1d(grid, ex["dloss"], D)
    pred = np.trapezoid(np.where(grid > b.barrier, dens, 0), grid)
    theta, occ = stationary_run(p, b, lr, B, tau, relaxation_times=8, n_replicas=400, seed=3)
    assert theta.shape[1] == occ.size == 400
    np.testing.assert_array_equal(occ, basin_of(theta, b.barrier, b.sharp).mean(0))
    se = occ.std(ddof=1) / np.sqrt(occ.size)
    assert abs(occ.mean() - pred) < 4 * se + 0.01


def test_design_sharp_wins_cold_wide_wins_hot():
    # The default design: exact stationary masses cross 1/2 between T = 2.5e-4 and 2e-3.
    data = make_two_minima_data(100000, 10, 0, 0.0)
    p, b = data.train, data.train.basins()
    grid = np.linspace(-7, 6, 2000)
    ex = p.exact_1d(grid)
    wide = [np.trapezoid(np.where(grid > b.barrier,
                                  stationary_density_1d(grid, ex["dloss"], 0.5 * T * ex["sigma"]), 0), grid)
            for T in (0.00025, 0.0005, 0.001, 0.002)]
    assert wide[0] < 0.2 and wide[-1] > 0.5
    assert np.all(np.diff(wide) > 0)


# ---------------------------------------------------------------- exact theory on a grid
@pytest.fixture(scope="module")
def theory():
    data = make_two_minima_data(20000, 10, 0, 0.0)
    p, b = data.train, data.train.basins()
    grid = np.linspace(-7, 6, 2000)
    ex = p.exact_1d(grid)
    return p, ExactTheory(grid, ex["dloss"], ex["sigma"], b)


def test_theory_density_and_masses(theory):
    _, th = theory
    for T in (0.0005, 0.002):
        p = th.density(T)
        assert abs(np.trapezoid(p, th.grid) - 1) < 1e-12
        direct = np.trapezoid(np.where(th.grid > th.basins.barrier, p, 0), th.grid)
        assert th.wide_mass(T) == pytest.approx(direct, rel=1e-12)
    # Ψ = ∫ L'/Σ by the cumulative trapezoid rule, from 0 at the left end.
    f, h = th.dloss / th.sigma, np.diff(th.grid)
    assert th.psi[0] == 0.0
    step = 0.5 * (f[1:] + f[:-1]) * h
    np.testing.assert_allclose(np.diff(th.psi), step, rtol=0, atol=1e-12 * np.abs(th.psi).max())


def test_relaxation_time_combines_both_passages(theory):
    _, th = theory
    b, T = th.basins, 0.001
    t_sw = mean_first_passage_time_1d(th.grid, th.dloss, 0.5 * T * th.sigma, b.sharp, b.wide)
    t_ws = mean_first_passage_time_1d(th.grid, th.dloss, 0.5 * T * th.sigma, b.wide, b.sharp)
    assert th.relaxation_time(T) == pytest.approx(t_sw * t_ws / (t_sw + t_ws), rel=1e-12)
    assert th.relaxation_time(T) < min(t_sw, t_ws)


def test_escape_times_ordering(theory):
    _, th = theory
    tau = th.escape_times(0.001, 0.002)
    # Moving the target out can only lengthen the passage; a vanishing step gives the SDE time.
    assert tau["pred"] > tau["exact"] > 0
    assert th.escape_times(0.001, 1e-12)["pred"] == pytest.approx(tau["exact"], rel=1e-6)
    assert tau["barrier_D"] > 0 and tau["kramers"] > 0


def test_step_bias_vanishes_with_lr_and_is_first_order(theory):
    p, th = theory
    T = 0.001
    assert th.step_bias_of_test_loss(p, T, 0.0) == 0.0
    small, half = th.step_bias_of_test_loss(p, T, 1e-4), th.step_bias_of_test_loss(p, T, 5e-5)
    assert small > 0  # positive curvature at both training minima: the spread widens the loss
    assert small / half == pytest.approx(2.0, rel=1e-3)


def test_laplace_threshold_near_equal_mass_temperature(theory):
    _, th = theory
    T_fine = np.geomspace(1e-4, 4e-3, 40)
    T_equal = crossing_temperature(T_fine, [th.wide_mass(T) for T in T_fine])
    assert 2.5e-4 < T_equal < 2e-3
    assert 0.3 < th.laplace_threshold_temperature() / T_equal < 3  # a rough estimate


def test_crossing_temperature_interpolates_in_log_T():
    T = np.array([1e-3, 4e-3, 1.6e-2])
    # Crosses 1/2 a quarter of the way from 0.4 to 0.8, so a quarter of the way in log T.
    assert crossing_temperature(T, [0.2, 0.4, 0.8]) == pytest.approx(4e-3 * 4 ** 0.25, rel=1e-12)
    assert np.isnan(crossing_temperature(T, [0.1, 0.2, 0.3]))


def test_quadratic_split_exact_for_small_shift(theory):
    p, th = theory
    # Shift ε·δ and temperature ε²·T: the expansion misses at the full shift of a
    # well-width and holds to a few per cent once both are a quarter of it or less.
    err = [quadratic_split_error(p, th.basins, e * 0.6, e ** 2 * 0.00025) for e in (1, 1 / 4, 1 / 8)]
    rel = [r["relative_error"] for r in err]
    assert rel[0] > 0.2 and max(rel[1:]) < 0.05
    for r in err:
        assert r["exact"] > 0 and r["quadratic"] > 0
        assert r["relative_error"] == pytest.approx(abs(r["quadratic"] - r["exact"]) / r["exact"])


def test_decomposition_rows_sum_to_the_exact_average(theory):
    p, th = theory
    rows = th.test_loss_decomposition({"same": p}, [0.0005])
    assert [r[2] for r in rows] == ["sharp", "wide"]
    assert sum(r[3]["mass"] for r in rows) == pytest.approx(1.0, abs=1e-9)
    assert len(decomposition_table(rows).splitlines()) == 3


def test_chi_square_claim_bound():
    claims = ClaimsTable("test")
    chi_square_claim(claims, "ok", "z small", [0.1, -0.2, 0.3])
    chi_square_claim(claims, "bad", "z large", [5.0, 5.0, 5.0])
    ok, bad = claims.records()
    assert ok["verdict"] == "holds" and bad["verdict"] == "fails"
    assert "99.9% bound" in ok["statement"]
