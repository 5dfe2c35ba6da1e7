"""The network grids of implicit_regularization, bayesian_evidence and noise_enhancement
build exactly the runs their chapters describe (counts, steps, batch sizes, strengths)."""

import math

import pytest

from sgdtemp.noise_enhancement import effective_batch_size
from sgdtemp.params import FIDELITIES
from sgdtemp.presets import bayesian_evidence as be
from sgdtemp.presets import implicit_regularization as ir
from sgdtemp.presets import noise_enhancement as ne
from sgdtemp.train import step_plan


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_noise_enhancement_runs_take_equal_steps_or_equal_evaluations(fidelity):
    cfg = ne.PARAMETERS.resolve(fidelity=fidelity)
    arms = ne.net_configs(cfg)
    bs, n, steps = list(cfg.net_batch_sizes), cfg.net_n_train, cfg.net_steps
    big = bs[-1]
    for c in arms["plain"] + arms["enhanced"]:
        assert sum(map(len, step_plan(c, n))) == steps
    enhanced_images = 2 * big * steps
    for c in arms["equal_cost"]:
        assert c["enhance_alpha"] == 0 and c["batch_size"] * sum(map(len, step_plan(c, n))) == enhanced_images
    beff = sorted({round(effective_batch_size(c["batch_size"], c["enhance_alpha"]), 9)
                   for c in arms["enhanced"]})
    assert beff == [float(b) for b in bs[:-1]]
    assert all(c["batch_size"] == big for c in arms["enhanced"])
    assert len(arms["plain"]) == len(bs) * cfg.net_seeds


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_bayesian_evidence_scans_batch_size_as_eps_n_over_g(fidelity):
    cfg = be.PARAMETERS.resolve(fidelity=fidelity)
    arms = be.net_configs(cfg)
    S = cfg.net_seeds
    cells = [(eps, n, g) for eps in cfg.net_lrs for n in cfg.net_n_trains
             for g in cfg.net_noise_scales if eps * n / g >= 1]
    assert len(arms["scan"]) == len(cells) * S
    # A g whose batch εN/g is below one example is left out of that cell's scan, and only that.
    assert {(c["lr"], c["n_train"]) for c in arms["scan"]} == {
        (eps, n) for eps in cfg.net_lrs for n in cfg.net_n_trains}
    it = iter(arms["scan"])
    for eps, n, g in cells:
        for s in range(S):
            c = next(it)
            assert (c["lr"], c["n_train"], c["seed"], c["momentum"]) == (eps, n, cfg.seed + s, 0.0)
            assert c["batch_size"] == pytest.approx(eps * n / g, rel=1e-12)
            assert c["depth"] == 1 and c["width"] == cfg.net_width
    eps_m, n_m = be.momentum_cell(cfg)
    m = cfg.net_momentum
    g_m = [g for g in cfg.net_noise_scales if be.in_scan(eps_m, n_m, g, m)]
    M = cfg.net_momentum_seeds
    assert len(arms["momentum"]) == len(g_m) * M
    for c, g in zip(arms["momentum"][::M], g_m):
        assert c["momentum"] == m and c["lr"] == eps_m and c["n_train"] == n_m
        assert c["lr"] * c["n_train"] / (c["batch_size"] * (1 - m)) == pytest.approx(g, rel=1e-12)
    # the scan cell it is compared with gets the seeds beyond the scan's, without momentum
    base = arms["momentum_base"]
    g_0 = [g for g in cfg.net_noise_scales if be.in_scan(eps_m, n_m, g)]
    assert len(base) == len(g_0) * (M - S)
    assert {c["seed"] for c in base} == {cfg.net_seed + s for s in range(S, M)}
    assert all(c["momentum"] == 0.0 and (c["lr"], c["n_train"]) == (eps_m, n_m) for c in base)
    # the noise-scale arm repeats the scans at one ε for one seed no other arm uses, measuring B_simple
    ns = arms["noise_scale"]
    eps_ns = cfg.net_noise_scale_lr
    assert [(c["n_train"], c["batch_size"]) for c in ns] == [
        (n, round(eps_ns * n / g)) for n in cfg.net_n_trains for g in cfg.net_noise_scales
        if be.in_scan(eps_ns, n, g)]
    other_seeds = {c["seed"] for a in ("scan", "momentum", "momentum_base") for c in arms[a]}
    assert {c["seed"] for c in ns} == {cfg.net_noise_scale_seed} and not other_seeds & {cfg.net_noise_scale_seed}
    assert all(c["noise_scale_every"] == cfg.net_noise_scale_every and c["lr"] == eps_ns
               and c["momentum"] == 0.0 and c["curvature_examples"] == min(c["n_train"], 2048) for c in ns)


def test_bayesian_evidence_refuses_a_noise_scale_arm_off_its_grid():
    with pytest.raises(ValueError, match="net_noise_scale_lr must be one of net_lrs"):
        be.PARAMETERS.resolve(fidelity="default", net_noise_scale_lr=0.07)
    with pytest.raises(ValueError, match="net_noise_scale_seed must lie outside"):
        be.PARAMETERS.resolve(fidelity="default", net_noise_scale_seed=3)


@pytest.mark.parametrize("fidelity", FIDELITIES)
def test_implicit_regularization_adds_the_regularizer_at_the_small_lr_only(fidelity):
    cfg = ir.PARAMETERS.resolve(fidelity=fidelity)
    arms = ir.net_configs(cfg)
    assert sorted({c["lr"] for c in arms["plain"]}) == sorted(cfg.net_lrs)
    assert all(c["grad_penalty"] == 0 for c in arms["plain"])
    assert {(c["lr"], c["grad_penalty"]) for c in arms["regularized"]} == \
        {(cfg.net_reg_lr, float(lam)) for lam in cfg.net_reg_strengths}
    assert len(arms["regularized"]) == len(cfg.net_reg_strengths) * cfg.net_reg_seeds
    # The plain cell the regularized runs are compared with has their seeds; the others net_seeds.
    seeds_at = lambda lr: sorted(c["seed"] for c in arms["plain"] if c["lr"] == lr)
    assert seeds_at(cfg.net_reg_lr) == sorted({c["seed"] for c in arms["regularized"]})
    targets = ir.compared_lrs(cfg)
    assert targets[0] == cfg.net_reg_lr and all(
        any(abs(lr - 4 * lam) < 1e-12 for lam in cfg.net_reg_strengths) for lr in targets[1:])
    for lr in cfg.net_lrs:
        assert len(seeds_at(lr)) == (cfg.net_reg_seeds if lr in targets else cfg.net_seeds)


def test_bad_network_parameters_are_refused_in_one_sentence():
    from sgdtemp.params import ParameterError

    cases = [(ir, dict(net_reg_strengths=[-0.1]), "net_reg_strengths"),
             (ir, dict(net_lrs=[0.04, 0.02, 0.08]), "net_lrs"),
             (be, dict(net_momentum=1.0), "net_momentum"),
             (be, dict(net_n_trains=[1280, 1000, 5120]), "net_n_trains"),
             (ne, dict(net_batch_sizes=[16, 16, 64]), "net_batch_sizes"),
             (ne, dict(net_batch_sizes=[16, 32, 7000]), "net_batch_sizes")]
    for module, bad, name in cases:
        with pytest.raises(ParameterError, match=name) as e:
            module.PARAMETERS.resolve(**bad)
        assert str(e.value).count(". ") == 0 and str(e.value).endswith(".")
