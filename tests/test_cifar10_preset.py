"""The cifar10_temperature grids: presets by grid, run order, and the committed quick grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from sgdtemp.params import ParameterError
from sgdtemp.presets import cifar10_temperature as c10
from sgdtemp.store import ResultsStore, config_key

REPO = Path(__file__).resolve().parents[1]


def test_each_fidelity_takes_its_grid_and_explicit_values_win():
    assert c10.PARAMETERS.resolve(fidelity="smoke").grid == "smoke"
    assert c10.PARAMETERS.resolve(fidelity="default").grid == c10.FIDELITY_GRID["default"]
    ref = c10.PARAMETERS.resolve(fidelity="default", grid="reference")
    for name, value in c10.GRIDS["reference"].items():
        assert ref[name] == value, name
    mixed = c10.PARAMETERS.resolve(fidelity="default", grid="reference", epochs=40)
    assert mixed.epochs == 40 and mixed.n_train == 50_000
    assert c10.PARAMETERS.resolve(fidelity="paper").width == 32
    with pytest.raises(ParameterError, match="^grid must be one of 'smoke', 'smoke_reference', 'quick', 'reference', 'reference_90', 'stationary', 'paper'"):
        c10.PARAMETERS.resolve(grid="huge")


def test_reference_grid_is_the_issue_scale_and_stays_below_the_old_breaking_lr():
    cfg = c10.PARAMETERS.resolve(fidelity="default", grid="reference")
    arms = c10.arm_configs(cfg)
    grid = [c for row in arms["grid"] for cell in row for c in cell]
    assert len(grid) == 3 * 3 * 2 and len(cfg.temperatures) >= 3 and len(cfg.batch_sizes) >= 3
    for c in grid:
        assert c["n_train"] == 50_000 and c["epochs"] >= 30 and c["augment"] is False
        assert c["curvature_batchnorm"] == "train" and c["curvature_examples"] >= c["batch_size"]
        assert c["lr"] <= 0.256  # the first grid broke at 0.512
    brk = [c for cell in arms["breaking"] for c in cell]
    assert [c["batch_size"] for c in brk] == [256, 512, 1024]
    assert all(c["lr"] / c["batch_size"] == pytest.approx(cfg.break_temperature) for c in brk)


def test_runs_are_ordered_seed_by_seed_then_the_breaking_arm():
    cfg = c10.PARAMETERS.resolve(fidelity="default", grid="reference")
    runs = c10.training_configs(cfg)
    n_grid = len(cfg.temperatures) * len(cfg.batch_sizes)
    assert [c["seed"] for c in runs[:n_grid]] == [0] * n_grid
    assert [c["seed"] for c in runs[n_grid:2 * n_grid]] == [1] * n_grid
    assert [(c["lr"], c["batch_size"]) for c in runs[:3]] == [(0.016, 32), (0.032, 64), (0.064, 128)]
    assert [c["batch_size"] for c in runs[2 * n_grid:2 * n_grid + 3]] == [256, 512, 1024]
    long = runs[2 * n_grid + 3:]  # the long arm: coldest and hottest T at the smallest B
    assert [(c["lr"], c["batch_size"], c["seed"], c["epochs"]) for c in long] == [
        (0.016, 32, 0, 90), (0.064, 32, 0, 90)]
    assert [dict(c, epochs=30) for c in long] == [runs[0], runs[6]]  # else equal to grid runs
    assert len({config_key(c) for c in runs}) == len(runs)


def test_the_90_epoch_grid_is_the_reference_grid_longer_and_reuses_the_long_arm():
    ref = c10.PARAMETERS.resolve(fidelity="default", grid="reference")
    long = c10.PARAMETERS.resolve(fidelity="default", grid="reference_90")
    runs_ref, runs_long = c10.training_configs(ref), c10.training_configs(long)
    assert all(c["epochs"] == 90 and c["n_train"] == 50_000 for c in runs_long)
    n_ref = len(runs_ref) - len(c10.arm_configs(ref)["long"])
    assert len(runs_long) == n_ref  # no long arm of its own: every run is long
    # else the same runs, in the same order
    assert [dict(c, epochs=30) for c in runs_long] == runs_ref[:n_ref]
    # the reference grid's long arm is two of its runs: a sweep of it computes 19, not 21
    keys = {config_key(c) for c in runs_long}
    assert {config_key(c) for c in c10.arm_configs(ref)["long"]} <= keys


def test_the_quick_grid_reads_the_first_committed_runs():
    cfg = c10.PARAMETERS.resolve(fidelity="default", grid="quick")
    assert cfg.store == str(REPO / "results" / "cifar10_temperature_quick")
    runs = c10.training_configs(cfg)
    assert len(runs) == 18 and c10.arm_configs(cfg)["breaking"] == []
    assert ResultsStore(cfg.store).missing(runs) == []
    assert all("curvature_batchnorm" not in ResultsStore(cfg.store).entry(c)["config"] for c in runs)


@pytest.mark.parametrize("values,start", [
    (dict(grid="reference", break_betas=[2, 1000]), "break_betas × max(batch_sizes) must be at most"),
    (dict(grid="quick", plateau_epochs=8), "plateau_epochs must be at most epochs + 1 = 7"),
    (dict(grid="quick", curvature_examples=20_000), "curvature_examples must be at most n_train"),
    (dict(grid="quick", n_train=60_000), "n_train must be at most 50000 for cifar10"),
    (dict(grid="quick", break_betas=[0.5]), "break_betas must be a list whose values"),
    (dict(grid="reference", long_epochs=30), "long_epochs must be 0 (no long arm) or more than epochs = 30"),
])
def test_bad_values_are_one_sentence(values, start):
    with pytest.raises(ParameterError) as e:
        c10.PARAMETERS.resolve(fidelity="default", **values)
    assert str(e.value).startswith(start) and str(e.value).endswith(".")


def test_the_chapter_store_holds_reference_scale_runs_only():
    """Issue 11: every run in results/cifar10_temperature uses all 50,000 training images
    for at least 30 epochs (the first, 6-epoch grid lives in results/cifar10_temperature_quick)."""
    import json

    for path in sorted((REPO / "results" / "cifar10_temperature").glob("*.json")):
        config = json.loads(path.read_text())["config"]
        assert config["n_train"] == 50_000 and config["epochs"] >= 30, path.name


def test_the_reference_grid_is_committed():
    """Issue 11: the reference sweep (no weight decay) stays reachable with ``-p grid
    reference`` and reads its committed runs; a run missing from the store (or orphaned by a
    change of its key) fails here."""
    cfg = c10.PARAMETERS.resolve(fidelity="default", grid="reference")
    assert Path(cfg.store) == REPO / "results" / "cifar10_temperature"
    runs = c10.training_configs(cfg)
    assert len(runs) == 23  # 18 grid runs, 3 of the breaking arm, 2 long ones
    assert ResultsStore(cfg.store).missing(runs) == []


def test_the_default_grid_is_the_stationary_grid_and_its_runs_are_committed():
    """Issue 21: ``--fidelity default`` is the stationary grid, plus the reference grid's two
    long runs without weight decay, every run committed, with weight decay in the grid and
    per-epoch weight-norm curves."""
    cfg = c10.PARAMETERS.resolve(fidelity="default")
    assert cfg.grid == "stationary" and Path(cfg.store) == REPO / "results" / "cifar10_temperature"
    runs = c10.training_configs(cfg)
    long = c10.no_decay_long_arm(cfg)
    assert len(runs) == 36 and len(long) == 2 and all(c["weight_decay"] == 0.0 for c in long)
    store = ResultsStore(cfg.store)
    assert store.missing(long) == []
    assert store.missing(runs) == [], "run: python -m sgdtemp sweep --preset cifar10_temperature:default"
    grid = [c for t in c10.arm_configs(cfg)["grid"] for b in t for c in b]
    assert grid and all(c["weight_decay"] > 0 for c in grid)
    for c in runs:
        curves = store.entry(c)["record"]["curves"]
        assert len(curves["weight_sq_norm"]) == c["epochs"] + 1, "a norm per epoch, and at epoch 0"


# ---------------------------------------------------------------- issue 21: the stationary grid
#: sha256 (first 16 hex digits) of the comma-joined store keys of every run of a grid, in
#: order, as they were before issue 21's options existed (computed from commit 9dab807).
OLD_GRID_KEYS = {"smoke_reference": (22, "32d4aebfb8a28c23"), "quick": (18, "4fb5dade4e77dfad"),
                 "reference": (23, "c31d9626121f9a4c"), "reference_90": (21, "ede83e385cc4cb5e")}


@pytest.mark.parametrize("grid", sorted(OLD_GRID_KEYS))
def test_the_older_grids_keep_every_run_key(grid):
    import hashlib

    from sgdtemp.train import training_config

    fidelity = "smoke" if grid.startswith("smoke") else "default"
    cfg = c10.PARAMETERS.resolve(fidelity=fidelity, grid=grid)
    assert cfg.weight_decay == 0.0 and cfg.decay_arm == [] and cfg.record_weight_norms is False
    assert cfg.shift_strength == 1.0
    keys = [config_key(training_config(**c)) for c in c10.training_configs(cfg)]
    n, digest = OLD_GRID_KEYS[grid]
    assert (len(keys), hashlib.sha256(",".join(keys).encode()).hexdigest()[:16]) == (n, digest)


def test_the_stationary_grid_is_issue_21s_design():
    cfg = c10.PARAMETERS.resolve(fidelity="default", grid="stationary")
    assert c10.PARAMETERS.resolve(fidelity="default").grid == "stationary"  # the default since issue 21
    arms = c10.arm_configs(cfg)
    grid = [c for row in arms["grid"] for cell in row for c in cell]
    assert len(cfg.temperatures) == 3 and cfg.batch_sizes == [32, 128] and cfg.n_seeds >= 4
    assert len(grid) == 3 * 2 * cfg.n_seeds
    brk = [c for cell in arms["breaking"] for c in cell]
    decay = [c for cell in arms["decay"] for c in cell]
    assert len(brk) == 2 * len(cfg.break_betas) and cfg.break_seeds == 2
    runs = c10.training_configs(cfg)
    assert len(runs) == len(grid) + len(brk) + len(decay) == 36 and arms["long"] == []
    for c in runs:  # what the chapter's store holds: all 50,000 images, at least 30 epochs
        assert c["model"] == "small_cnn" and c["n_train"] == 50_000 and c["epochs"] >= 30
        assert c["record_weight_norms"] is True and c["shift_strength"] == 0.4
        assert c["augment"] is False and c["curvature_batchnorm"] == "train"
    for c in grid + brk:
        assert c["weight_decay"] == cfg.weight_decay == 5e-3
    # relaxation of the weight norm, ~1/(4TλN) epochs: a few epochs at the coldest T
    relax = 1 / (4 * min(cfg.temperatures) * cfg.weight_decay * cfg.n_train)
    assert 1 <= relax <= cfg.epochs / 10
    # the decay arm: 0 (control), λ/2 and 2λ at T = break_temperature, B₀; the Tλ of the
    # last two are the grid's extremes
    assert sorted({c["weight_decay"] for c in decay}) == [0.0, 2.5e-3, 1e-2] and len(decay) == 6
    for c in decay:
        assert c["batch_size"] == 128 and c["lr"] / c["batch_size"] == pytest.approx(1e-3)
    t_lam = sorted({c["lr"] / c["batch_size"] * c["weight_decay"] for c in decay} - {0.0})
    assert t_lam == pytest.approx([min(cfg.temperatures) * 5e-3, max(cfg.temperatures) * 5e-3])
    assert len({config_key(c) for c in runs}) == len(runs)


def test_the_stationary_sweep_fits_about_six_cpu_hours():
    from sgdtemp.train import training_config

    cfg = c10.PARAMETERS.resolve(fidelity="default", grid="stationary")
    hours = sum(c10.cpu_seconds_estimate(training_config(**c)) for c in c10.training_configs(cfg)) / 3600
    assert 4.0 < hours < 6.5


def test_cpu_seconds_estimate_counts_training_evaluation_and_curvature():
    from sgdtemp.train import training_config

    c = training_config(model="small_cnn", n_train=50_000, batch_size=128, epochs=10, curvature=True,
                        curvature_examples=1024, curvature_probes=16, curvature_iters=16,
                        eval_train_examples=5000, eval_test_examples=5000)
    rate = c10.SMALL_CNN_CPU_RATE[128]
    want = (10 * 390 * 128 + 11 * 15_000 / 3 + 32 * 1024 * 3.5) / rate
    assert c10.cpu_seconds_estimate(c) == pytest.approx(want)
    # between two measured batch sizes the rate is interpolated in log B
    mid = c10.cpu_seconds_estimate({**c, "batch_size": 64, "curvature": False, "epochs": 1})
    r64 = (c10.SMALL_CNN_CPU_RATE[32] + c10.SMALL_CNN_CPU_RATE[128]) / 2
    assert mid == pytest.approx((781 * 64 / r64) + 2 * 15_000 / 3 / rate)
    with pytest.raises(ValueError):
        c10.cpu_seconds_estimate({**c, "model": "resnet"})


def test_the_stationary_grid_is_reachable_from_the_sweep_command(tmp_path, capsys):
    from sgdtemp.cli import main

    assert main(["sweep", "--preset", "cifar10_temperature:default", "-p", "grid", "stationary",
                 "--store", str(tmp_path / "s"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("36 runs, 0 already in") and "36 to compute" in out
    assert out.count("model=small_cnn") == 36 and not (tmp_path / "s").exists()


@pytest.mark.parametrize("values,start", [
    (dict(grid="stationary", model="mlp", dataset="fashion_mnist"), "decay_arm must be [] for the mlp"),
    (dict(grid="stationary", model="mlp", dataset="fashion_mnist", decay_arm=[]),
     "record_weight_norms must be False for the mlp"),
    (dict(grid="stationary", shift_strength=1.5), "shift_strength must be a number between 0 and 1"),
    (dict(grid="stationary", weight_decay=-1e-3), "weight_decay must be a number between 0 and 1"),
])
def test_bad_stationary_values_are_one_sentence(values, start):
    with pytest.raises(ParameterError) as e:
        c10.PARAMETERS.resolve(fidelity="default", **values)
    assert str(e.value).startswith(start) and str(e.value).endswith(".")
