"""Learning-rate and batch-size schedules, the Hessian Frobenius estimator, the isotropic
two-minima threshold, the collapse statistics, and store keys of later options."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sgdtemp import curvature as curv
from sgdtemp.stats import (
    seed_paired_sd,
    breaking_point, equal_label_f_test, t_multiplier, value_at_level, variance_explained,
)
from sgdtemp.isotropic_minima import (
    QuadraticWells, fp_wide_basin_mass, laplace_mass_ratio, laplace_threshold_noise,
    threshold_noise, wide_basin_mass,
)
from sgdtemp.params import ParameterError
from sgdtemp.store import KEYED_WHEN_SET, config_key
from sgdtemp.train import (
    CONFIG_KEYS, run_training, run_trainings, step_plan, temperature_factor, training_config,
)
from tests.test_multirun import DEVICES, assert_agree, synthetic_dataset

SYN = dict(dataset="fashion_mnist", model="mlp", width=16, n_train=256, epochs=3,
           eval_train_examples=128, eval_test_examples=64, device="cpu")


# ---------------------------------------------------------------- schedules
def test_temperature_factor_is_a_triangle_from_cold_to_hot_and_back():
    r, P = 5.0, 2.0
    assert temperature_factor(0.0, r, P) == pytest.approx(1 / r)
    assert temperature_factor(1.0, r, P) == pytest.approx(1.0)
    assert temperature_factor(2.0, r, P) == pytest.approx(1 / r)
    assert temperature_factor(0.5, r, P) == pytest.approx(1 / r + (1 - 1 / r) * 0.5)
    assert temperature_factor(3.5, r, P) == pytest.approx(temperature_factor(1.5, r, P))


def test_constant_plan_is_floor_n_over_b_steps_of_b():
    cfg = training_config(**SYN, lr=0.1, batch_size=40)
    assert step_plan(cfg, 256) == [[(40, 1.0)] * 6] * 3


@pytest.mark.parametrize("schedule", ["cyclic_lr", "cyclic_batch"])
def test_a_scheduled_run_applies_the_planned_lr_and_batch_at_every_step(schedule):
    cfg = training_config(**SYN, lr=0.2, batch_size=8, schedule=schedule, cycle_ratio=4.0,
                          cycle_epochs=1.0)
    plan = [s for epoch in step_plan(cfg, 256) for s in epoch]
    r = run_training(cfg, progress=False, data=synthetic_dataset())
    trace = r["schedule_trace"]
    assert r["steps"] == len(plan) == len(trace["lr"])
    assert trace["batch_size"] == [b for b, _ in plan]
    assert trace["lr"] == [0.2 * c for _, c in plan]
    T = np.array(trace["lr"]) / np.array(trace["batch_size"])
    assert T.max() == pytest.approx(0.2 / 8, rel=0.02)  # the hottest point is lr/B
    assert T.min() == pytest.approx(0.2 / 8 / 4, rel=0.05)  # the coldest T_max/ratio
    if schedule == "cyclic_batch":
        assert set(trace["lr"]) == {0.2} and max(trace["batch_size"]) == 32
    else:
        assert set(trace["batch_size"]) == {8}


def test_cyclic_lr_and_cyclic_batch_follow_the_same_temperature():
    a = training_config(**SYN, lr=0.2, batch_size=8, schedule="cyclic_lr", cycle_ratio=4.0)
    b = training_config(**SYN, lr=0.2, batch_size=8, schedule="cyclic_batch", cycle_ratio=4.0)
    for e_a, e_b in zip(step_plan(a, 256), step_plan(b, 256)):
        # at the same point of training (examples drawn), T agrees up to rounding B
        pos_a = np.cumsum([0] + [s[0] for s in e_a])[:-1] / 256
        T_a = np.array([0.2 * c / B for B, c in e_a])
        pos_b = np.cumsum([0] + [s[0] for s in e_b])[:-1] / 256
        T_b = np.array([0.2 / B for B, _ in e_b])
        T_a_at_b = np.interp(pos_b, pos_a, T_a)
        assert np.all(np.abs(T_b / T_a_at_b - 1) < 0.15)


@pytest.mark.parametrize("device", DEVICES)
def test_grouped_scheduled_runs_match_one_at_a_time(device):
    data = synthetic_dataset()
    configs = [dict(SYN, lr=lr, batch_size=8, seed=s, schedule="cyclic_batch", cycle_ratio=3.0,
                    device=device) for s, lr in [(0, 0.1), (1, 0.2), (2, 0.05), (3, 0.1)]]
    alone = [run_training(c, progress=False, data=data) for c in configs]
    together = run_trainings(configs, progress=False, data=data)
    for a, b in zip(alone, together):
        assert a["schedule_trace"] == b["schedule_trace"]
        assert_agree(a, b, device)


@pytest.mark.parametrize("kw,name", [
    (dict(schedule="cosine"), "schedule"), (dict(cycle_ratio=0.5), "cycle_ratio"),
    (dict(schedule="cyclic_batch", batch_size=100, cycle_ratio=5.0, n_train=256), "batch_size"),
    (dict(depth=3, model="small_cnn"), "depth"),
])
def test_bad_schedule_options_are_one_sentence(kw, name):
    with pytest.raises(ParameterError) as e:
        training_config(**{**SYN, **kw})
    assert name in str(e.value).split(".")[0]


# ---------------------------------------------------------------- store keys
def test_later_options_keep_old_keys_at_their_defaults_and_change_them_otherwise():
    for k, d in KEYED_WHEN_SET.items():
        assert CONFIG_KEYS[k][0] == d, k
    cfg = training_config(lr=0.1)
    old = {k: v for k, v in cfg.items() if k not in KEYED_WHEN_SET}
    assert config_key(cfg) == config_key(old)
    changes = dict(depth=3, schedule="cyclic_lr", cycle_ratio=2.0, cycle_epochs=1.0,
                   curvature_frobenius=True, grad_penalty=0.01, enhance_alpha=0.5,
                   curvature_batchnorm="train", noise_scale_every=1,
                   record_weight_norms=True, shift_strength=0.5)
    assert set(changes) == set(KEYED_WHEN_SET)
    for k, v in changes.items():
        assert config_key({**cfg, k: v}) != config_key(cfg), k


# ---------------------------------------------------------------- Frobenius
def test_frobenius_estimate_matches_the_explicit_hessian():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    batches = [(x[:20], y[:20]), (x[20:], y[20:])]
    params = dict(model.named_parameters())
    names = list(params)
    shapes = [params[k].shape for k in names]
    flat0 = torch.cat([params[k].detach().flatten() for k in names])

    def loss_of(flat):
        ps, i = {}, 0
        for k, s in zip(names, shapes):
            ps[k] = flat[i:i + s.numel()].view(s)
            i += s.numel()
        out = torch.func.functional_call(model, ps, (x,))
        return torch.nn.functional.cross_entropy(out, y)

    H = torch.autograd.functional.hessian(loss_of, flat0)
    exact = float(torch.linalg.matrix_norm(H))
    est, se = curv.hessian_frobenius_norm(model, torch.nn.functional.cross_entropy, batches,
                                          n_probes=400, seed=1)
    assert se is not None and se < 0.1 * exact
    assert abs(est - exact) < 4 * se  # the estimator's own standard error, 4σ: fails < 1e-4


# ---------------------------------------------------------------- isotropic two minima
WELLS = QuadraticWells((-1.5, 0.0), ((4.0, 0.0), (0.0, 4.0)), (1.5, 0.0), ((7.5, 0.0), (0.0, 0.5)),
                       loss_sharp=0.0, loss_wide=0.1)


def test_laplace_threshold_is_where_the_laplace_masses_are_equal():
    n_star = laplace_threshold_noise(WELLS.delta_loss, WELLS.det_sharp, WELLS.det_wide)
    assert n_star == pytest.approx(0.2 / math.log(16 / 3.75), rel=1e-14)
    assert laplace_mass_ratio(0.1, 16.0, 3.75, n_star) == pytest.approx(1.0, rel=1e-12)
    with pytest.raises(ValueError):
        laplace_threshold_noise(0.1, 3.0, 4.0)


def test_exact_threshold_of_well_separated_wells_is_the_laplace_one():
    # Well separated (the basins meet ~8 standard deviations from either minimum): the
    # mass outside each quadratic's own basin is below 1e-12, so the exact threshold of
    # this piecewise-quadratic loss equals Laplace's to quadrature accuracy.
    grid = (np.linspace(-5, 5, 401), np.linspace(-5, 5, 401))
    n_star = laplace_threshold_noise(WELLS.delta_loss, WELLS.det_sharp, WELLS.det_wide)
    assert threshold_noise(WELLS, grid, (0.02, 1.0)) == pytest.approx(n_star, rel=1e-6)
    # and the wide basin (larger top eigenvalue, smaller det H) wins above it
    assert wide_basin_mass(WELLS, 2 * n_star, grid) > 0.5 > wide_basin_mass(WELLS, n_star / 2, grid)


def test_fokker_planck_steady_state_gives_the_gibbs_basin_mass():
    # Closer wells keep the barrier low enough (~0.5 loss) for the sparse solve to couple
    # the two basins; the finite-volume scheme is exact for exp(−L/n) to O(h²).
    wells = QuadraticWells((-0.6, 0.0), ((4.0, 0.0), (0.0, 4.0)), (0.6, 0.0), ((7.5, 0.0), (0.0, 0.5)),
                           loss_sharp=0.0, loss_wide=0.1)
    grid = (np.linspace(-4, 4, 161), np.linspace(-4, 4, 161))
    fp = fp_wide_basin_mass(wells, 0.14, grid)
    gibbs = wide_basin_mass(wells, 0.14, grid)
    assert 0.3 < gibbs < 0.7
    assert fp == pytest.approx(gibbs, abs=2e-3)


# ---------------------------------------------------------------- collapse statistics
def test_variance_explained_and_the_f_test():
    labels = np.repeat([0, 1, 2, 3], 6)
    assert variance_explained(labels * 2.0, labels) == 1.0
    rng = np.random.default_rng(0)
    cells = np.repeat(np.arange(8), 3)
    lab = cells // 2
    ok = equal_label_f_test(lab + rng.normal(0, 0.1, 24), cells, lab)
    assert (ok.dof_between, ok.dof_within) == (4, 16) and ok.p_value > 0.01
    bad = equal_label_f_test(lab + (cells % 2) * 0.5 + rng.normal(0, 0.1, 24), cells, lab)
    assert bad.p_value < 1e-6


def test_f_test_is_calibrated_under_the_null():
    # Under equal means the p-value is uniform: at 5% about 5% of 2000 draws reject.
    rng = np.random.default_rng(1)
    cells = np.repeat(np.arange(6), 2)
    lab = cells // 3
    p = [equal_label_f_test(rng.normal(size=12), cells, lab).p_value for _ in range(2000)]
    rate = np.mean(np.array(p) < 0.05)
    assert abs(rate - 0.05) < 4 * math.sqrt(0.05 * 0.95 / 2000)


def test_breaking_point_and_value_at_level():
    y = [[0.5, 0.6, 0.7], [0.0, 0.1, 0.2], [0.01, 0.12, 0.19]]  # β = 4, 1, 2; three seeds
    bp = breaking_point([4, 1, 2], y)
    assert bp.betas == (1.0, 2.0, 4.0) and bp.beta_star == 4.0
    assert bp.difference[2] == pytest.approx(0.5)
    # β = 4 leaves already with the noise of β ∈ {1, 2, 4}, so the noise comes from the
    # unbroken β ∈ {1, 2} alone: the seed-paired s.d. of those two rows, dof (2−1)(3−1) = 2
    s, dof = seed_paired_sd([[0.0, 0.1, 0.2], [0.01, 0.12, 0.19]])
    assert bp.noise_betas == (1.0, 2.0) and bp.dof == dof == 2
    assert bp.se[1] == pytest.approx(s * math.sqrt(2 / 3))
    assert bp.threshold == pytest.approx(t_multiplier(2))
    assert breaking_point([1, 2], [[0, 1, 2], [0.1, 0.9, 2.1]]).beta_star is None
    # a diverged run breaks its β whatever the others did
    div = breaking_point([1, 2, 4], [[0, 1, 2], [0.1, 0.9, 2.1], [0, 1, 2]],
                         diverged=[[0, 0, 0], [0, 0, 0], [0, 1, 0]])
    assert div.beta_star == 4.0 and div.diverged == (0, 0, 1)


def test_breaking_point_noise_ignores_a_broken_beta_with_a_wild_spread():
    """β = 1, 2, 4 agree to within a small noise; β = 8 is shifted by 1 and scattered by
    ±3. Pooling β = 8 into the noise would hide its shift; the unbroken rows do not."""
    rng = np.random.default_rng(0)
    seeds = rng.normal(0, 1, 6)
    y = np.array([seeds + rng.normal(0, 0.01, 6) for _ in range(3)]
                 + [seeds + 1 + rng.normal(0, 3, 6) * np.array([1, -1, 1, -1, 1, -1]) * 0.1])
    bp = breaking_point([1, 2, 4, 8], y)
    assert bp.noise_betas == (1.0, 2.0, 4.0) and bp.beta_star == 8.0
    assert bp.sd < 0.02


def test_breaking_point_with_one_seed_uses_the_noise_given():
    """One seed a β: the differences have no spread of their own; an external seed-paired
    s.d. s₁ (dof 8) of one run makes se = s₁√2 and the threshold t_multiplier(8)."""
    y = [[1.0], [1.05], [1.4]]  # β = 1, 2, 4; one seed
    bp = breaking_point([1, 2, 4], y, noise=(0.03, 8))
    assert bp.dof == 8 and bp.threshold == pytest.approx(t_multiplier(8))
    assert bp.se == pytest.approx((0.03 * math.sqrt(2),) * 3, rel=1e-14)
    assert bp.difference[1:] == pytest.approx((0.05, 0.4))
    # 0.05 < 4.28·0.042 = 0.18 < 0.4: β = 2 stays, β = 4 leaves
    assert bp.beta_star == 4.0
    assert breaking_point([1, 2, 4], y, noise=(0.2, 8)).beta_star is None


def test_t_multiplier_keeps_the_three_standard_error_rate():
    from scipy import stats as st

    assert t_multiplier(10) == pytest.approx(st.t.ppf(st.norm.cdf(3.0), 10))
    for dof in (2, 5, 30):
        assert 2 * st.t.sf(t_multiplier(dof), dof) == pytest.approx(2 * st.norm.sf(3.0), rel=1e-9)
    assert t_multiplier(10_000) == pytest.approx(3.0, abs=2e-3)
    assert value_at_level([0.1, 0.5, 0.9], [1.0, 2.0, 3.0], 0.7) == pytest.approx(2.5)
    assert math.isnan(value_at_level([0.1, 0.2], [1.0, 2.0], 0.7))


@pytest.mark.parametrize("extra", [
    [dict(grad_penalty=0.0), dict(grad_penalty=0.05), dict(grad_penalty=0.2), dict(grad_penalty=0.05, momentum=0.5)],
    [dict(enhance_alpha=0.5), dict(enhance_alpha=1.0), dict(enhance_alpha=2.0), dict(enhance_alpha=1.0, weight_decay=0.01)],
])
@pytest.mark.parametrize("device", DEVICES)
def test_grouped_regularized_and_enhanced_runs_match_one_at_a_time(extra, device):
    data = synthetic_dataset()
    configs = [dict(SYN, lr=0.1, batch_size=16, seed=s, device=device, **e)
               for s, e in enumerate(extra)]
    alone = [run_training(c, progress=False, data=data) for c in configs]
    together = run_trainings(configs, progress=False, data=data)
    for a, b in zip(alone, together):
        assert a["steps"] == b["steps"]
        assert_agree(a, b, device)
    if "enhance_alpha" in extra[0]:
        assert alone[0]["steps"] == 3 * (256 // 32)  # two batches of 16 a step


@pytest.mark.parametrize("fidelity", ["smoke", "default", "paper"])
def test_three_factors_grids_are_valid_at_every_fidelity(fidelity):
    from sgdtemp.presets.three_factors import ARMS, PARAMETERS, arm_configs

    arms = arm_configs(PARAMETERS.resolve(fidelity=fidelity))
    assert all(arms[a] for a in ARMS)
    rescale = arms["rescale"]
    # every rescaled pair keeps T = η₀/B₀
    T = {round(c["lr"] / c["batch_size"], 12) for c in rescale}
    assert len(T) == 1


def test_epochs_elapsed_follows_the_engines_epoch_rule():
    from sgdtemp.train import epochs_elapsed

    cfg = training_config(**SYN, lr=0.2, batch_size=8, schedule="cyclic_batch", cycle_ratio=4.0,
                          cycle_epochs=1.0)
    plan = step_plan(cfg, 256)
    sizes = [b for epoch in plan for b, _ in epoch]
    e = epochs_elapsed(sizes, 256)
    starts = np.cumsum([0] + [len(epoch) for epoch in plan])[:-1]
    assert list(e[starts]) == [0.0, 1.0, 2.0]
    for k, epoch in enumerate(plan):  # within an epoch: examples drawn so far / n
        drawn = np.cumsum([0] + [b for b, _ in epoch])[:-1] / 256
        assert np.allclose(e[starts[k]:starts[k] + len(epoch)], k + drawn)
