"""The loaders and the engine on small files written here in the real on-disk formats.

Without the shared data these are the tests of the data path: torchvision's CIFAR-10
pickle batches (``cifar-10-batches-py/``), the Fashion-MNIST IDX files and the JPEG
ImageFolder tarball, each read by :func:`sgdtemp.data.load_dataset` and trained on by
:func:`sgdtemp.train.run_training` from its ``data_dir``, exactly as a chapter does.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sgdtemp import data as D
from sgdtemp.train import run_training


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path, monkeypatch):
    """Decoded arrays go to a cache folder of this test, and the in-memory copies of other
    tests' files are not seen."""
    monkeypatch.setenv(D.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(D, "_MEMORY", {})
    monkeypatch.setattr(D, "_DERIVED", {})
    monkeypatch.setattr(D, "_KEY_OF", {})


# ---------------------------------------------------------------- CIFAR-10 pickle batches
def cifar_images(n: int, start: int) -> np.ndarray:
    """HWC uint8 images whose pixels encode (image, row, column, channel) distinctly
    enough that a wrong reshape or transpose cannot go unnoticed."""
    i = np.arange(start, start + n)[:, None, None, None]
    r = np.arange(32)[None, :, None, None]
    c = np.arange(32)[None, None, :, None]
    ch = np.arange(3)[None, None, None, :]
    return ((7 * i + 3 * r + 5 * c + 85 * ch) % 256).astype(np.uint8)


def write_cifar_batches(root: Path, per_batch: int = 4, n_test: int = 5) -> tuple[np.ndarray, ...]:
    """The archive's layout: data_batch_1..5 and test_batch, each a Python-2-style pickle
    of {b"batch_label", b"labels", b"data" (n, 3072 = R plane, G plane, B plane), b"filenames"}."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    xs, ys = [], []

    def write(name: str, x: np.ndarray, y: np.ndarray) -> None:
        d = {b"batch_label": name.encode(), b"labels": [int(v) for v in y],
             b"data": x.transpose(0, 3, 1, 2).reshape(len(x), 3072),
             b"filenames": [f"{name}_{k}.png".encode() for k in range(len(x))]}
        (folder / name).write_bytes(pickle.dumps(d, protocol=2))

    for b in range(5):
        x = cifar_images(per_batch, b * per_batch)
        y = (np.arange(per_batch) + 3 * b) % 10
        write(f"data_batch_{b + 1}", x, y)
        xs.append(x)
        ys.append(y)
    xte, yte = cifar_images(n_test, 1000), np.arange(n_test) % 10
    write("test_batch", xte, yte)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": []}, protocol=2))
    return np.concatenate(xs), np.concatenate(ys), xte, yte


def test_cifar_reads_the_official_pickle_batches(tmp_path):
    want = write_cifar_batches(tmp_path)
    got = D.cifar10_arrays(tmp_path)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert got[0].shape == (20, 32, 32, 3) and got[0].dtype == np.uint8
    assert got[1].dtype == np.int64
    # From the .npz cache in a new process: the same arrays.
    D._MEMORY.clear()
    for g, w in zip(D.cifar10_arrays(tmp_path), want):
        np.testing.assert_array_equal(g, w)


def test_cifar_batches_folder_missing_a_batch_is_one_sentence(tmp_path):
    write_cifar_batches(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(D.DataNotFound) as e:
        D.cifar10_arrays(tmp_path)
    msg = str(e.value)
    assert "data_batch_3" in msg and D.DATA_ENV in msg and msg.endswith(".") and ". " not in msg


def test_load_dataset_from_pickle_batches_is_channel_first(tmp_path):
    xtr, ytr, xte, yte = write_cifar_batches(tmp_path, per_batch=6)
    ds = D.load_dataset("cifar10", tmp_path, n_train=10, seed=1)
    assert tuple(ds.x_train.shape) == (10, 3, 32, 32) and ds.x_train.dtype == torch.uint8
    np.testing.assert_array_equal(np.bincount(ds.y_train.numpy(), minlength=10), [1] * 10)
    np.testing.assert_array_equal(ds.x_train.permute(0, 2, 3, 1).numpy(), xtr[ds.train_index])
    np.testing.assert_array_equal(ds.x_test.permute(0, 2, 3, 1).numpy(), xte)
    assert ds.mean == pytest.approx(D.channel_mean_std(xtr)[0], rel=1e-12)


# ---------------------------------------------------------------- Fashion-MNIST IDX
def idx_bytes(a: np.ndarray) -> bytes:
    """IDX: two zero bytes, type 0x08 (uint8), the number of dimensions, the sizes as
    big-endian uint32, then the data in C order."""
    return bytes([0, 0, 0x08, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_fashion(root: Path, n_per_class: int = 6, n_test: int = 20, seed: int = 0):
    """Gzipped IDX files as distributed, with class-dependent images (class c: a bright
    band at rows 2c..2c+2), so that a few SGD steps can learn them."""
    rng = np.random.default_rng(seed)
    folder = root / "fashion-mnist"
    folder.mkdir(parents=True)

    def images(y):
        x = rng.integers(0, 80, (len(y), 28, 28), dtype=np.uint8)
        for k, c in enumerate(y):
            x[k, 2 * c:2 * c + 3] = 250
        return x

    ytr = np.repeat(np.arange(10, dtype=np.uint8), n_per_class)
    rng.shuffle(ytr)
    yte = (np.arange(n_test) % 10).astype(np.uint8)
    arrays = {"train-images-idx3-ubyte": images(ytr), "train-labels-idx1-ubyte": ytr,
              "t10k-images-idx3-ubyte": images(yte), "t10k-labels-idx1-ubyte": yte}
    for stem, a in arrays.items():
        (folder / f"{stem}.gz").write_bytes(gzip.compress(idx_bytes(a)))
    return tuple(arrays.values())


def test_load_dataset_from_idx_subset_noise_and_shift(tmp_path):
    xtr, ytr, xte, yte = write_fashion(tmp_path)
    ds = D.load_dataset("fashion_mnist", tmp_path, n_train=30, seed=2, label_noise=0.2)
    assert tuple(ds.x_train.shape) == (30, 1, 28, 28) and ds.in_channels == 1
    np.testing.assert_array_equal(np.bincount(ytr[ds.train_index], minlength=10), [3] * 10)
    np.testing.assert_array_equal(ds.x_train[:, 0].numpy(), xtr[ds.train_index])
    assert int((ds.y_train.numpy() != ytr[ds.train_index]).sum()) == 6  # 20 % of 30
    np.testing.assert_array_equal(ds.x_shift[:, 0].numpy(), D.domain_shifted(xte, 0))
    np.testing.assert_array_equal(ds.y_shift.numpy(), yte)
    mean, std = D.channel_mean_std(xtr)
    assert ds.mean == pytest.approx(mean, rel=1e-12) and ds.std == pytest.approx(std, rel=1e-12)


def test_run_training_reads_idx_files_from_data_dir(tmp_path):
    """The engine end to end from a data folder, as a chapter calls it: deterministic on
    the CPU, every step of exactly B examples, and learning the written task."""
    write_fashion(tmp_path)
    cfg = dict(dataset="fashion_mnist", data_dir=str(tmp_path), model="mlp", width=32,
               n_train=60, batch_size=10, epochs=3, lr=0.1, device="cpu",
               eval_train_examples=60, eval_test_examples=20)
    a = run_training(cfg, progress=False)
    b = run_training(cfg, progress=False)
    assert a["curves"] == b["curves"] and a["config"]["data_dir"] == str(tmp_path)
    assert a["steps"] == 3 * 6 and a["curves"]["epoch"] == [0, 1, 2, 3]
    loss = a["curves"]["train_loss"]
    # ln 10 ≈ 2.3 at initialisation; 18 steps on this separable task bring it well down
    # (a step applied as η/B, or of the wrong sign, leaves it near 2.3).
    assert loss[0] > 1.8 and loss[-1] < 0.5 * loss[0]


# ---------------------------------------------------------------- JPEG tarball
def jpeg(colour) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_jpeg_tar(root: Path, n_train: int = 2, n_test: int = 1) -> None:
    """cifar10-jpeg.tar.gz with members cifar10-jpeg/{train,test}/<class>/NNNN.jpg."""
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(root / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        for split, n in (("train", n_train), ("test", n_test)):
            for c, cls in enumerate(D.CIFAR10_CLASSES):
                for i in range(n):
                    blob = jpeg((25 * c, 255 - 25 * c, 60 * i))
                    info = tarfile.TarInfo(f"cifar10-jpeg/{split}/{cls}/{i:04d}.jpg")
                    info.size = len(blob)
                    tar.addfile(info, io.BytesIO(blob))


def test_run_training_reads_the_jpeg_tarball_from_data_dir(tmp_path):
    write_jpeg_tar(tmp_path / "data")
    cfg = dict(dataset="cifar10", data_dir=str(tmp_path / "data"), model="small_cnn", width=4,
               n_train=20, batch_size=10, epochs=1, lr=0.05, device="cpu",
               eval_train_examples=20, eval_test_examples=10, curvature=True,
               curvature_examples=8, curvature_probes=2, curvature_iters=2)
    r = run_training(cfg, progress=False)
    assert r["steps"] == 2 and r["config"]["augment"] is True and not r["diverged"]
    assert set(r["curvature"]) >= {"hessian_trace", "top_eigenvalue"}
    assert r["curvature"]["n_examples"] == 8


def test_available_says_whether_a_reader_would_find_the_files(tmp_path):
    from sgdtemp.params import ParameterError

    empty = tmp_path / "empty"
    empty.mkdir()
    assert not D.available("cifar10", empty) and not D.available("fashion_mnist", empty)
    write_fashion(tmp_path / "f")
    assert D.available("fashion_mnist", tmp_path / "f") and not D.available("cifar10", tmp_path / "f")
    write_cifar_batches(tmp_path / "c")
    assert D.available("cifar10", tmp_path / "c")
    (tmp_path / "c" / "cifar-10-batches-py" / "test_batch").unlink()
    assert not D.available("cifar10", tmp_path / "c")  # an incomplete archive is not the data
    write_jpeg_tar(tmp_path / "j")
    assert D.available("cifar10", tmp_path / "j")
    with pytest.raises(ParameterError, match="dataset must be one of"):
        D.available("imagenet", tmp_path)
