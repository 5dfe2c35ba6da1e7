"""Runs trained together in one vectorized group give the one-at-a-time records."""

from __future__ import annotations

import pytest
import torch

from sgdtemp.train import plan_groups, run_training, run_trainings, training_config
from tests.shared_data import needs
from tests.test_train import synthetic_dataset

# Skips, naming the data set, when the data folder lacks Fashion-MNIST (also when it exists
# but is empty): the training engine reads it from $SGDTEMP_DATA.
needs_shared = needs("fashion_mnist")

FMNIST = dict(dataset="fashion_mnist", model="mlp", n_train=2000, batch_size=50, epochs=2,
              eval_train_examples=1000, eval_test_examples=1000, device="cpu")
# Grouped-equals-alone is checked on every device the code runs on: the CPU always, CUDA
# where a GPU is present (the tests parametrized by DEVICES).
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA absent: the GPU case runs where a GPU is"))]
CURVE_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "shifted_test_loss",
              "shifted_test_acc")


def assert_agree(a: dict, b: dict, device: str) -> None:
    """A run trained alone and in a group agree to the rounding of ``device``.

    CPU: float32, the same operations in another summation order (observed ≤ 2.4e-7): every
    curve within 1e-4. CUDA: both engines run their forward passes under bf16 autocast
    (sgdtemp.train's precision policy), so a rounding that differs in float32 can flip a
    bf16 rounding; emulated on the CPU (bf16 autocast of the same code: torch.autocast does
    reach inside the stacked engine's vmap(grad)), these synthetic runs moved losses by up
    to 0.009 nats and accuracies by up to 2 examples. The CUDA bounds are 0.03 nats and 4 of
    the 64 test images (0.0625); they were set without a GPU (none was lent when they were
    written): the first GPU run of this test is their check.
    """
    if device == "cpu":
        assert max_difference(a, b) < 1e-4
        return
    assert a["curves"]["epoch"] == b["curves"]["epoch"]
    for k in CURVE_KEYS:
        tol = 0.03 if k.endswith("loss") else 4 / 64
        assert max(abs(x - y) for x, y in zip(a["curves"][k], b["curves"][k])) <= tol, k


def max_difference(a: dict, b: dict) -> float:
    """Largest absolute difference between two records' curves and final metrics."""
    assert a["curves"]["epoch"] == b["curves"]["epoch"]
    d = 0.0
    for k in CURVE_KEYS:
        assert len(a["curves"][k]) == len(b["curves"][k])
        d = max(d, *(abs(x - y) for x, y in zip(a["curves"][k], b["curves"][k])))
        d = max(d, abs(a["final"][k] - b["final"][k]))
    return d


@needs_shared
def test_a_group_gives_the_one_at_a_time_records_on_fashion_mnist():
    configs = [dict(FMNIST, seed=s, lr=lr) for s, lr in [(0, 0.05), (1, 0.1), (2, 0.02), (3, 0.2)]]
    # per-run momentum, weight decay and label noise in the same group
    configs.append(dict(FMNIST, seed=4, lr=0.1, momentum=0.9, weight_decay=1e-3, label_noise=0.25))
    assert plan_groups([training_config(**c) for c in configs]) == [[0, 1, 2, 3, 4]]
    alone = [run_training(c, progress=False) for c in configs]
    together = run_trainings(configs, progress=False)
    assert len(together) == len(alone)
    # The last run (momentum 0.9 at η = 0.1, label noise) amplifies rounding: alone, one
    # torch thread against two moves its curves by 0.014 (measured), while a wrong per-run
    # option moves them by 0.13 (no decay) to 1.0 (no label noise): it is held to 0.05.
    for a, b, tol in zip(alone, together, [1e-3] * 4 + [0.05]):
        assert a["config"] == b["config"]
        assert a["steps"] == b["steps"] == 2 * (2000 // 50)
        assert not b["diverged"]
        assert max_difference(a, b) < tol
    # it trained: accuracy well above chance (0.1) for the plain runs
    assert min(r["final"]["test_acc"] for r in together[:4]) > 0.5


@needs_shared
def test_a_diverging_member_leaves_the_others_unchanged():
    calm = [dict(FMNIST, seed=s, lr=0.05) for s in (0, 1, 2)]
    wild = dict(FMNIST, seed=7, lr=50.0)  # diverges within a few steps
    with_wild = run_trainings(calm[:2] + [wild] + calm[2:], progress=False)
    without = run_trainings(calm, progress=False)
    alone = run_training(wild, progress=False)
    r_wild = with_wild[2]
    assert r_wild["diverged"] and r_wild["diverged_step"] == alone["diverged_step"]
    assert r_wild["curves"] == alone["curves"] or max_difference(r_wild, alone) < 1e-3
    for a, b in zip(with_wild[:2] + with_wild[3:], without):
        assert not a["diverged"] and max_difference(a, b) == 0.0


def test_groups_are_cut_by_shared_options_and_size():
    base = dict(dataset="fashion_mnist", model="mlp", n_train=1000, device="cpu")
    cfgs = [training_config(**base, seed=s, lr=0.1, batch_size=B) for B in (50, 100) for s in range(5)]
    cfgs.append(training_config(**{**base, "model": "small_cnn"}, lr=0.1))  # BatchNorm: alone
    assert plan_groups(cfgs, max_group=3) == [[0, 1, 2], [3, 4], [5, 6, 7], [8, 9], [10]]


@pytest.mark.parametrize("device", DEVICES)
def test_a_group_on_synthetic_data_matches_one_at_a_time(device):
    data = synthetic_dataset()
    base = dict(dataset="fashion_mnist", model="mlp", width=16, n_train=256, batch_size=32,
                epochs=2, eval_train_examples=128, eval_test_examples=64, device=device)
    configs = [dict(base, seed=s, lr=lr, momentum=m) for s, lr, m in
               [(0, 0.1, 0.0), (1, 0.3, 0.0), (2, 0.1, 0.5), (3, 0.05, 0.9)]]
    alone = [run_training(c, progress=False, data=data) for c in configs]
    together = run_trainings(configs, progress=False, data=data)
    for a, b in zip(alone, together):
        assert a["device"] == b["device"] and a["device"].startswith(device)
        assert a["steps"] == b["steps"] == 2 * (256 // 32)
        assert a["final"] == {k: a["curves"][k][-1] for k in CURVE_KEYS}
        assert_agree(a, b, device)


@pytest.mark.parametrize("device", DEVICES)
def test_a_diverging_member_stops_before_its_update_alone_and_in_a_group(device):
    """The divergence rule is the same in both engines and on every device: the step whose
    loss is non-finite or above 1000 × the initial loss is not applied (steps ==
    diverged_step), the group's member stops at the step it stops at alone, and the other
    members train as they do without it."""
    data = synthetic_dataset()
    base = dict(dataset="fashion_mnist", model="mlp", width=16, n_train=256, batch_size=32,
                epochs=3, eval_train_examples=128, eval_test_examples=64, device=device)
    calm = [dict(base, seed=s, lr=0.1) for s in (0, 1)]
    wild = dict(base, seed=5, lr=1e4)
    alone = run_training(wild, progress=False, data=data)
    assert alone["diverged"] and alone["steps"] == alone["diverged_step"]
    with_wild = run_trainings(calm[:1] + [wild] + calm[1:], progress=False, data=data)
    without = run_trainings(calm, progress=False, data=data)
    r = with_wild[1]
    assert r["diverged"] and r["diverged_step"] == alone["diverged_step"] == r["steps"]
    assert r["curves"]["epoch"] == alone["curves"]["epoch"]
    assert_agree(r, alone, device)
    for a, b in zip(with_wild[:1] + with_wild[2:], without):
        assert not a["diverged"]
        if device == "cpu":  # exact: a run's rows do not depend on the other rows
            assert max_difference(a, b) == 0.0
        else:  # a batched product of 2 rows may take another kernel than one of 3
            assert_agree(a, b, device)


@needs_shared
@pytest.mark.parametrize("executor", ["local", "dask"])
def test_a_sweep_stores_grouped_runs_one_file_each_with_the_group_size(tmp_path, executor):
    import json

    from sgdtemp.store import ResultsStore, config_key
    from sgdtemp.sweep import run_grid

    small = dict(FMNIST, n_train=500, epochs=1, eval_train_examples=200, eval_test_examples=200)
    configs = [dict(small, seed=s, lr=0.05 * (1 + s)) for s in range(4)]
    if executor == "dask":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster, \
                Client(cluster) as client:
            out = run_grid(configs, store=tmp_path, executor=client, progress=False)
    else:
        out = run_grid(configs, store=tmp_path, n_workers=2, progress=False)
    assert out.n_computed == 4 and not out.failures
    store = ResultsStore(tmp_path)
    assert len(store) == 4
    sizes = []
    for c, rec in zip(configs, out):
        entry = json.loads(store.path(training_config(**c)).read_text())
        assert entry["key"] == config_key(training_config(**c))
        sizes.append(entry["provenance"]["group_size"])
        alone = run_training(c, progress=False)
        assert max_difference(alone, rec) < 1e-3
    # two local workers: two groups of two; one Dask worker: one group of four
    assert sizes == ([2, 2, 2, 2] if executor == "local" else [4, 4, 4, 4])
    again = run_grid(configs, store=tmp_path, progress=False)
    assert again.n_computed == 0 and again.n_stored == 4
    # what the grid cost: each group's time shared among its runs, missing runs not counted
    from sgdtemp.sweep import grid_cost

    provs = [json.loads(store.path(training_config(**c)).read_text())["provenance"] for c in configs]
    cost = grid_cost(configs + [dict(small, seed=99, lr=0.05)], tmp_path)
    assert cost["n_runs"] == 4
    assert cost["cpu_seconds"] == pytest.approx(sum(p["cpu_time_s"] / p["group_size"] for p in provs))
    assert cost["wall_seconds"] == pytest.approx(sum(p["wall_time_s"] / p["group_size"] for p in provs))


def test_regularized_and_enhanced_runs_get_their_own_groups():
    # A plain run grouped with regularized ones would pay for their double backward; an
    # enhanced run takes two batches a step. Each kind shares steps with its own kind only.
    base = dict(dataset="fashion_mnist", model="mlp", n_train=1000, device="cpu", lr=0.1, batch_size=50)
    cfgs = [training_config(**base, seed=0), training_config(**base, seed=1, grad_penalty=0.01),
            training_config(**base, seed=2), training_config(**base, seed=3, enhance_alpha=0.5),
            training_config(**base, seed=4, grad_penalty=0.02), training_config(**base, seed=5, enhance_alpha=1.0)]
    assert plan_groups(cfgs) == [[0, 2], [1, 4], [3, 5]]
