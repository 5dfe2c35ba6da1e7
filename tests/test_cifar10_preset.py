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
    with pytest.raises(ParameterError, match="^grid must be one of 'smoke', 'quick', 'reference', 'reference_90', 'paper'"):
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


def test_the_default_grid_is_the_reference_grid_and_every_run_is_committed():
    """Issue 11: ``--fidelity default`` reads the committed reference sweep and trains
    nothing; a run missing from the store (or orphaned by a change of its key) fails here."""
    cfg = c10.PARAMETERS.resolve(fidelity="default")
    assert cfg.grid == "reference" and Path(cfg.store) == REPO / "results" / "cifar10_temperature"
    runs = c10.training_configs(cfg)
    assert len(runs) == 23  # 18 grid runs, 3 of the breaking arm, 2 long ones
    assert ResultsStore(cfg.store).missing(runs) == []
