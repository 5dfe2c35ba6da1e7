"""bench/paper_cifar10_gpu.py: the prepared GPU run of the cifar10_temperature paper grid.

No GPU is needed here: the dry run lists the runs and their cost, bad input is one
sentence with exit status 2, and without CUDA the real run refuses before any compute.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "bench" / "paper_cifar10_gpu.py"


def run_script(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=300)


def load_script():
    spec = importlib.util.spec_from_file_location("paper_cifar10_gpu", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_run_cost_counts_training_evaluation_and_curvature_images():
    from sgdtemp.train import training_config

    c = training_config(model="resnet", n_train=50_000, batch_size=96, epochs=3, curvature=True,
                        curvature_examples=2048, curvature_probes=32, curvature_iters=20,
                        eval_train_examples=5000, eval_test_examples=5000)
    cost = load_script().run_cost(c)
    assert cost["train"] == 3 * (50_000 // 96) * 96  # the last partial batch is dropped
    assert cost["eval"] == 4 * (5000 + 2 * 5000)  # epoch 0 and after each epoch
    assert cost["curvature"] == (32 + 20) * 2048
    assert cost["weighted"] == pytest.approx(cost["train"] + cost["eval"] / 3 + 3.5 * cost["curvature"])


def test_dry_run_lists_the_paper_grid_and_its_cost_and_writes_nothing(tmp_path):
    store = tmp_path / "store"
    r = run_script("--dry-run", "--store", str(store))
    assert r.returncode == 0, r.stderr
    from sgdtemp.presets.cifar10_temperature import PARAMETERS, training_configs

    n = len(training_configs(PARAMETERS.resolve(fidelity="paper")))
    assert f"paper grid: {n} runs (resnet" in r.stdout and f"{n} to train" in r.stdout
    assert r.stdout.count(" epochs=30 ") == n and "min at 80,000 images/s" in r.stdout
    assert not store.exists()


@pytest.mark.parametrize("args,word", [
    (["--concurrency", "0"], "--concurrency"),
    (["--assume-rate", "-5"], "--assume-rate"),
    (["-p", "batch_sizes", "[64, 100000]"], "batch_sizes"),
    (["-p", "fidelity", "smoke"], "-p fidelity"),
])
def test_bad_input_is_one_sentence_exit_2(tmp_path, args, word):
    r = run_script(*args, "--store", str(tmp_path / "s"))
    err = r.stderr.strip()
    assert r.returncode == 2 and err.startswith("error:") and "\n" not in err and word in err
    assert not (tmp_path / "s").exists()


def test_without_a_gpu_the_real_run_refuses_before_any_compute(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible here")
    r = run_script("--store", str(tmp_path / "s"))
    assert r.returncode == 2 and "needs a CUDA GPU" in r.stderr
    assert not (tmp_path / "s").exists()


def test_the_paper_grid_follows_the_stationary_setup(tmp_path):
    """Issue 21: weight decay on every run, a decay arm, weight norms recorded, the weaker
    domain shift; the dry run says so."""
    from sgdtemp.presets.cifar10_temperature import GRIDS, PARAMETERS, training_configs

    cfg = PARAMETERS.resolve(fidelity="paper")
    runs = training_configs(cfg)
    stationary = GRIDS["stationary"]
    assert cfg.weight_decay == stationary["weight_decay"] > 0
    assert cfg.shift_strength == stationary["shift_strength"] < 1
    assert all(c["record_weight_norms"] and c["shift_strength"] == cfg.shift_strength for c in runs)
    assert {c["weight_decay"] for c in runs} == {cfg.weight_decay, *cfg.decay_arm}
    r = run_script("--dry-run", "--store", str(tmp_path / "s"))
    assert r.returncode == 0, r.stderr
    head = r.stdout.splitlines()[0]
    assert f"weight decay {cfg.weight_decay:g}" in head and "weight norms recorded" in head
    assert f"shift strength {cfg.shift_strength:g}" in head
