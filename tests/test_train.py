"""The training loop: validation, determinism, learning, divergence, augmentation."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sgdtemp.data import Dataset
from sgdtemp.params import ParameterError
from sgdtemp.train import random_crop_flip, run_training, training_config

from shared_data import SHARED, needs  # noqa: E402  (tests/shared_data.py)

# Small evaluation sets keep each run to a few seconds on 2 cores.
FAST = dict(eval_train_examples=500, eval_test_examples=500, device="cpu")


@pytest.mark.parametrize("kw,name", [
    (dict(lr=0), "lr"), (dict(lr=-1.0), "lr"), (dict(lr=float("nan")), "lr"),
    (dict(batch_size=0), "batch_size"), (dict(batch_size=2.5), "batch_size"),
    (dict(n_train=100, batch_size=101), "batch_size"), (dict(batch_size=60_000), "batch_size"),
    (dict(dataset="mnist"), "dataset"), (dict(model="vgg"), "model"),
    (dict(label_noise=1.5), "label_noise"), (dict(device="tpu"), "device"),
    (dict(epochs=-1), "epochs"), (dict(n_train=10**6), "n_train"), (dict(augment="yes"), "augment"),
    (dict(learning_rate=0.1), "learning_rate"),
])
def test_bad_config_is_one_sentence_naming_the_key(kw, name):
    with pytest.raises(ParameterError) as e:
        training_config(**kw)
    msg = str(e.value)
    assert name in msg.split()[0] and msg.endswith(".") and ". " not in msg


def test_config_defaults_are_filled_and_plain():
    cfg = training_config(lr=1, dataset="fashion_mnist")
    assert cfg["lr"] == 1.0 and isinstance(cfg["lr"], float)
    assert cfg["augment"] is False and training_config()["augment"] is True
    assert cfg["momentum"] == 0.0 and cfg["weight_decay"] == 0.0
    assert training_config(**cfg) == cfg  # idempotent: a stored config reproduces itself


def test_random_crop_flip_takes_a_crop_of_the_padded_image():
    x = torch.arange(6 * 2 * 5 * 5, dtype=torch.int32).view(6, 2, 5, 5) + 1  # no zeros
    out = random_crop_flip(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(6):
        candidates = [padded[i, :, a:a + 5, b:b + 5] for a in range(5) for b in range(5)]
        candidates += [c.flip(-1) for c in candidates]
        assert any(torch.equal(out[i], c) for c in candidates)


def test_random_crop_flip_is_uniform_over_offsets_and_flips():
    # Distinct pixel values make each of the 5 × 5 offsets × 2 flips = 50 outcomes
    # recognisable. Each has probability 1/50; over 5000 images its count is
    # Binomial(5000, 0.02): mean 100, sd 9.9. All 50 within 5 sd (50..150) fails with
    # probability < 50 · 6e-7 for a correct implementation; a biased offset or flip
    # (e.g. offsets in [0, 2·pad) or flip probability ≠ ½) moves counts far outside.
    x = (torch.arange(25, dtype=torch.int16) + 1).view(1, 1, 5, 5).expand(5000, 1, 5, 5)
    out = random_crop_flip(x, 2, torch.Generator().manual_seed(1))[:, 0]
    padded = torch.nn.functional.pad(x[:1], (2, 2, 2, 2))[0, 0]
    cands = torch.stack([padded[a:a + 5, b:b + 5] for a in range(5) for b in range(5)])
    cands = torch.cat([cands, cands.flip(-1)])  # (50, 5, 5)
    match = (out[:, None] == cands[None]).flatten(2).all(-1)  # (5000, 50)
    assert torch.all(match.sum(1) == 1)  # every output is exactly one crop
    counts = match.sum(0)
    assert counts.min() > 50 and counts.max() < 150


def synthetic_dataset(n=256, seed=0) -> Dataset:
    """Separable toy images: class c has a bright c-th row; for tests that need no files."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randint(0, 60, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    x[torch.arange(n), 0, 2 * y] = 250
    return Dataset(name="fashion_mnist", x_train=x, y_train=y, x_test=x[:64], y_test=y[:64],
                   x_shift=x[64:128], y_shift=y[64:128], n_classes=4, mean=(0.2,), std=(0.3,),
                   classes=("a", "b", "c", "d"), train_index=np.arange(n))


def test_record_is_json_and_complete_on_synthetic_data():
    cfg = dict(dataset="fashion_mnist", model="mlp", lr=0.1, batch_size=30, epochs=2, **FAST)
    r = run_training(cfg, progress=False, data=synthetic_dataset())
    json.dumps(r, allow_nan=False)
    assert r["curves"]["epoch"] == [0, 1, 2]
    assert r["steps"] == 2 * (256 // 30)  # drop_last: every step has exactly B examples
    for k in ("train_loss", "train_acc", "test_loss", "test_acc", "shifted_test_loss", "shifted_test_acc"):
        assert len(r["curves"][k]) == 3 and r["final"][k] == r["curves"][k][-1]
    assert r["diverged"] is False and r["diverged_step"] is None and r["device"] == "cpu"
    assert r["curvature"] is None and r["noise"] is None and r["images_per_second"] > 0
    # The toy task is separable: 2 epochs of SGD must learn it well above chance (0.25).
    assert r["final"]["train_acc"] > 0.6


def test_divergence_is_recorded_not_raised():
    cfg = dict(dataset="fashion_mnist", model="mlp", lr=1e6, batch_size=32, epochs=3, **FAST)
    r = run_training(cfg, progress=False, data=synthetic_dataset())
    assert r["diverged"] is True and isinstance(r["diverged_step"], int)
    assert 0 <= r["diverged_step"] < 3 * (256 // 32) and r["steps"] == r["diverged_step"]
    assert r["curves"]["epoch"][0] == 0 and len(r["curves"]["epoch"]) < 4
    json.dumps(r, allow_nan=False)


@needs("cifar10")
def test_cifar_training_is_deterministic_and_measures_curvature():
    cfg = dict(dataset="cifar10", data_dir=str(SHARED), n_train=256, batch_size=32, epochs=1,
               lr=0.05, seed=3, curvature=True, gradient_noise=True, curvature_examples=32,
               curvature_probes=3, curvature_iters=3, **FAST)
    a = run_training(cfg, progress=False)
    b = run_training(cfg, progress=False)
    for k in ("curves", "final", "curvature", "noise", "steps", "diverged"):
        assert a[k] == b[k], k
    c = run_training({**cfg, "seed": 4, "curvature": False, "gradient_noise": False}, progress=False)
    assert c["curves"]["train_loss"] != a["curves"]["train_loss"]
    assert a["curvature"]["hessian_trace"] > 0 and a["curvature"]["top_eigenvalue"] > 0
    assert a["noise"]["grad_cov_trace"] > 0


@needs("fashion_mnist")
def test_short_training_reduces_train_loss():
    cfg = dict(dataset="fashion_mnist", data_dir=str(SHARED), model="mlp", n_train=2000,
               batch_size=32, epochs=2, lr=0.1, **FAST)
    r = run_training(cfg, progress=False)
    loss = r["curves"]["train_loss"]
    # From ln 10 ≈ 2.30 at initialisation, 125 SGD steps on Fashion-MNIST reach ~0.6; a
    # broken update (wrong sign, no step, wrong labels) stays near or above 2.3.
    assert loss[0] > 2.0 and loss[-1] < 0.5 * loss[0]
    assert r["final"]["test_acc"] > 0.6


def test_config_bounds_are_inclusive_and_unknown_options_list_the_allowed_ones():
    # The whole training set and a batch of all of it are allowed (N = B: one step per epoch).
    assert training_config(dataset="fashion_mnist", n_train=60_000)["n_train"] == 60_000
    assert training_config(n_train=128, batch_size=128)["batch_size"] == 128
    with pytest.raises(ParameterError, match="allowed: dataset, data_dir, model, width, lr, "):
        training_config(learning_rate=0.1)


def test_curvature_in_training_mode_needs_a_whole_batch():
    with pytest.raises(ParameterError, match=r"^curvature_examples must be at least batch_size = 128"):
        training_config(curvature=True, curvature_batchnorm="train", curvature_examples=100)
    # without curvature, or in eval mode, any number of examples is fine
    training_config(curvature=False, curvature_batchnorm="train", curvature_examples=100)
    training_config(curvature=True, curvature_examples=100)
    with pytest.raises(ParameterError, match="^curvature_batchnorm must be one of 'eval', 'train'"):
        training_config(curvature_batchnorm="running")


def test_training_mode_curvature_is_measured_on_batches_of_b_and_records_lr_times_lambda():
    """The same trained weights (same seed, same steps): the eval-mode and train-mode
    Hessians are measured on the same examples but are different losses; the train-mode
    record carries B, the mode and η·λ_max computed from its own λ_max."""
    base = dict(dataset="fashion_mnist", model="small_cnn", n_train=256, batch_size=32, epochs=1, lr=0.05, seed=2,
                curvature=True, curvature_examples=80, curvature_probes=3, curvature_iters=4, **FAST)
    ev = run_training(base, progress=False, data=synthetic_dataset())
    tr = run_training({**base, "curvature_batchnorm": "train"}, progress=False,
                      data=synthetic_dataset())
    assert ev["curves"] == tr["curves"]  # the mode changes the measurement, not the training
    c = tr["curvature"]
    assert c["batchnorm"] == "train" and c["batch_size"] == 32
    assert c["n_examples"] == 64  # ⌊80/32⌋ whole batches of 32
    assert c["lr_times_top_eigenvalue"] == pytest.approx(0.05 * c["top_eigenvalue"], rel=1e-15)
    assert "batchnorm" not in ev["curvature"] and ev["curvature"]["n_examples"] == 80
    assert c["top_eigenvalue"] != ev["curvature"]["top_eigenvalue"]
