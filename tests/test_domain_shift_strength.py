"""The corruption strength s of the domain-shifted test set (issue 21).

s = 1 must be the original corruption bit for bit (the committed runs' shifted test set),
s = 0 no corruption, and in between each of the three steps weakened linearly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sgdtemp import data as D
from sgdtemp.params import ParameterError
from sgdtemp.train import run_training

from test_data import write_fashion  # noqa: E402  (tests/test_data.py)
from test_train import synthetic_dataset  # noqa: E402


def original_domain_shift(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The corruption as it was before the strength existed (commit 9dab807), frozen here."""
    z = x.astype(np.float32) / 255.0
    if z.ndim == 3:
        z = z[..., None]
    m = z.mean(axis=(1, 2), keepdims=True)
    z = m + 0.5 * (z - m)
    p = np.pad(z, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    z = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) / 4.0
    z = (z[:, :, :-2] + 2 * z[:, :, 1:-1] + z[:, :, 2:]) / 4.0
    rng = np.random.default_rng([seed, 303])
    z = z + 0.08 * rng.standard_normal(z.shape, dtype=np.float32)
    return np.rint(np.clip(z, 0.0, 1.0) * 255.0).astype(np.uint8).reshape(x.shape)


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (6, 8, 7, 3), dtype=np.uint8)


def test_full_strength_is_the_original_corruption_bit_for_bit(images):
    np.testing.assert_array_equal(D.domain_shifted(images, seed=3), original_domain_shift(images, 3))
    np.testing.assert_array_equal(D.domain_shifted(images, seed=3, strength=1.0),
                                  original_domain_shift(images, 3))
    grey = images[..., 0]
    np.testing.assert_array_equal(D.domain_shifted(grey), original_domain_shift(grey))


def test_zero_strength_leaves_the_images_unchanged(images):
    np.testing.assert_array_equal(D.domain_shifted(images, strength=0.0), images)


def test_intermediate_strength_is_the_documented_map(images):
    """Without noise, s mixes contrast (1 − s/2) and blur linearly: check a pixel by hand."""
    s = 0.4
    g = images[:1, :, :, 0]
    z = g[0] / 255.0
    zc = z.mean() + (1 - s * 0.5) * (z - z.mean())
    k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    want = np.rint(((1 - s) * zc[3, 3] + s * np.sum(k * zc[2:5, 2:5])) * 255)
    assert D.domain_shifted(g, noise_std=0.0, strength=s)[0, 3, 3] == want


def test_the_corruption_grows_with_the_strength(images):
    big = np.random.default_rng(1).integers(0, 256, (50, 16, 16, 3), dtype=np.uint8)
    change = [np.abs(D.domain_shifted(big, strength=s).astype(float) - big).mean()
              for s in (0.0, 0.2, 0.4, 0.7, 1.0)]
    assert change[0] == 0 and all(a < b for a, b in zip(change, change[1:]))


@pytest.mark.parametrize("s", [-0.1, 1.5])
def test_a_strength_outside_0_1_is_refused(images, s):
    with pytest.raises(ParameterError, match="^shift_strength must be a number between 0 and 1"):
        D.domain_shifted(images, strength=s)


def test_load_dataset_builds_and_caches_the_shift_at_its_strength(tmp_path, monkeypatch):
    monkeypatch.setenv(D.CACHE_ENV, str(tmp_path / "cache"))
    write_fashion(tmp_path / "data" / "fashion-mnist", np.random.default_rng(0), gz=True)
    full = D.load_dataset("fashion_mnist", tmp_path / "data")
    weak = D.load_dataset("fashion_mnist", tmp_path / "data", shift_strength=0.3)
    xte = D.fashion_mnist_arrays(tmp_path / "data")[2]
    assert full.shift_strength == 1.0 and weak.shift_strength == 0.3
    np.testing.assert_array_equal(full.x_shift[:, 0].numpy(), D.domain_shifted(xte))
    np.testing.assert_array_equal(weak.x_shift[:, 0].numpy(), D.domain_shifted(xte, strength=0.3))
    names = sorted(p.name for p in (tmp_path / "cache" / "arrays").glob("*-xte-shift*"))
    assert len(names) == 2 and any(n.endswith("-xte-shift0.npy") for n in names)  # the old name


def test_a_run_evaluates_the_shift_at_its_configured_strength(monkeypatch):
    """``run_training`` given a data set of another strength loads the right one instead."""
    seen = []
    real = D.domain_shifted

    def shifted(x, seed=0, **kw):
        seen.append(kw.get("strength", 1.0))
        return real(x, seed, **kw)

    loaded = []

    def fake_load(*a, **kw):  # the synthetic set, its shifted copy at the asked strength
        d = synthetic_dataset()
        s = kw.get("shift_strength", 1.0)
        x = d.x_test.numpy()[:, 0]
        d.x_shift = torch.from_numpy(shifted(x, strength=s))[:, None]
        d.y_shift = d.y_test
        d.shift_strength = s
        loaded.append(s)
        return d

    import sgdtemp.train as train

    monkeypatch.setattr(train, "load_dataset", fake_load)
    cfg = dict(dataset="fashion_mnist", model="mlp", lr=0.1, batch_size=32, epochs=1,
               eval_train_examples=64, eval_test_examples=64, device="cpu", shift_strength=0.25)
    r = run_training(cfg, progress=False, data=synthetic_dataset())  # strength 1: reloaded
    assert loaded == [0.25] and seen == [0.25]
    assert r["config"]["shift_strength"] == 0.25
