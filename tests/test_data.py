"""Data readers on tiny files in the real on-disk formats, and on the real shared data."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest

from sgdtemp import data as D
from sgdtemp.params import ParameterError



from shared_data import SHARED, needs  # noqa: E402  (tests/shared_data.py)


# ---------------------------------------------------------------- IDX (Fashion-MNIST format)
def idx_bytes(a: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08}[a.dtype]
    return bytes([0, 0, code, a.ndim]) + struct.pack(f">{a.ndim}I", *a.shape) + a.tobytes()


def write_fashion(folder: Path, rng, gz: bool, n_train=12, n_test=5):
    folder.mkdir(parents=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, a in arrays.items():
        raw = idx_bytes(a)
        if gz:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (folder / stem).write_bytes(raw)
    return list(arrays.values())


@pytest.mark.parametrize("layout,gz", [("fashion-mnist", True), ("FashionMNIST/raw", False)])
def test_fashion_mnist_reads_idx_files(tmp_path, monkeypatch, layout, gz):
    monkeypatch.setenv(D.CACHE_ENV, str(tmp_path / "cache"))
    want = write_fashion(tmp_path / "data" / layout, np.random.default_rng(0), gz)
    got = D.fashion_mnist_arrays(tmp_path / "data")
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert got[0].dtype == np.uint8 and got[1].dtype == np.int64
    # A second process would read the cache file: drop the in-memory copy and read again.
    assert len(list((tmp_path / "cache" / "arrays").glob("fashion_mnist-*.npz"))) == 1
    D._MEMORY.clear()
    again = D.fashion_mnist_arrays(tmp_path / "data")
    for g, w in zip(again, want):
        np.testing.assert_array_equal(g, w)


def test_read_idx_rejects_other_files(tmp_path):
    p = tmp_path / "x"
    p.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="not an IDX file"):
        D.read_idx(p)


# ---------------------------------------------------------------- ImageFolder JPEG tar (CIFAR copy)
def class_colour(c: int, i: int) -> tuple[int, int, int]:
    return (20 * c + 10, 200 - 15 * c, 40 + 30 * i)


def jpeg(colour) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def make_jpeg_tree(n_per_class={"train": 3, "test": 1}):
    """{member name: bytes} in the ImageFolder layout, classes listed in reverse order
    so that the reader's class order cannot come from the file order."""
    files = {}
    for split, n in n_per_class.items():
        for c in reversed(range(10)):
            for i in range(n):
                files[f"cifar10-jpeg/{split}/{D.CIFAR10_CLASSES[c]}/{i:04d}.jpg"] = jpeg(class_colour(c, i))
    return files


def check_cifar(arrays, n_per_class={"train": 3, "test": 1}):
    xtr, ytr, xte, yte = arrays
    assert xtr.shape == (30, 32, 32, 3) and xte.shape == (10, 32, 32, 3)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.int64
    np.testing.assert_array_equal(ytr, np.repeat(np.arange(10), 3))  # (class, file) order
    np.testing.assert_array_equal(yte, np.arange(10))
    for k, (c, i) in enumerate((c, i) for c in range(10) for i in range(3)):
        # A flat colour survives JPEG (quality 95) to within a few levels.
        assert np.abs(xtr[k].astype(int) - class_colour(c, i)).max() <= 4


def test_cifar_reads_jpeg_tar_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv(D.CACHE_ENV, str(tmp_path / "cache"))
    files = make_jpeg_tree()
    root = tmp_path / "data"
    root.mkdir()
    with tarfile.open(root / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        for name, blob in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    first = D.cifar10_arrays(root)
    check_cifar(first)
    cached = list((tmp_path / "cache" / "arrays").glob("cifar10-jpeg-tar-*.npz"))
    assert len(cached) == 1
    D._MEMORY.clear()
    second = D.cifar10_arrays(root)  # from the .npz
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_cifar_reads_extracted_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(D.CACHE_ENV, str(tmp_path / "cache"))
    root = tmp_path / "data"
    for name, blob in make_jpeg_tree().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    check_cifar(D.cifar10_arrays(root))


def test_missing_data_raises_one_sentence(tmp_path):
    for reader in (D.cifar10_arrays, D.fashion_mnist_arrays):
        with pytest.raises(D.DataNotFound) as e:
            reader(tmp_path)
        msg = str(e.value)
        assert isinstance(e.value, ParameterError)
        assert str(tmp_path) in msg and "SGDTEMP_DATA" in msg and "download=True" in msg
        assert msg.endswith(".") and msg.count(". ") == 0


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path / "env"))
    assert D.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert D.resolve_data_dir() == tmp_path / "env"
    monkeypatch.delenv(D.DATA_ENV)
    assert D.resolve_data_dir() == Path("~/.cache/sgdtemp/data").expanduser()


def test_unknown_dataset_is_a_parameter_error():
    with pytest.raises(ParameterError, match="dataset must be one of 'cifar10', 'fashion_mnist'"):
        D.load_dataset("imagenet")


# ---------------------------------------------------------------- subsets and corruptions
def test_stratified_subset_is_balanced_and_seeded():
    y = np.repeat(np.arange(10), 50)
    idx = D.stratified_subset(y, 123, 10, seed=3)
    counts = np.bincount(y[idx], minlength=10)
    np.testing.assert_array_equal(counts, [13, 13, 13] + [12] * 7)
    assert len(np.unique(idx)) == 123
    np.testing.assert_array_equal(idx, D.stratified_subset(y, 123, 10, seed=3))
    assert not np.array_equal(idx, D.stratified_subset(y, 123, 10, seed=4))
    with pytest.raises(ParameterError):
        D.stratified_subset(y, 501, 10, seed=0)


def test_corrupt_labels_changes_exactly_the_fraction():
    y = np.random.default_rng(0).integers(0, 10, 1000)
    z = D.corrupt_labels(y, 0.3, 10, seed=1)
    assert np.sum(z != y) == 300  # every corrupted label is a wrong one
    assert z.min() >= 0 and z.max() <= 9
    np.testing.assert_array_equal(z, D.corrupt_labels(y, 0.3, 10, seed=1))
    np.testing.assert_array_equal(D.corrupt_labels(y, 0.0, 10, seed=1), y)
    # The new label is uniform over the 9 wrong classes: the shift (z − y) mod 10 takes
    # each of 1..9 with count ~ Binomial(300, 1/9), mean 33.3, sd 5.4; all 9 within
    # 4 sd (33 ± 22) fails with probability < 1e-3 for a correct implementation.
    shifts = np.bincount((z - y)[z != y] % 10, minlength=10)[1:]
    assert np.all(np.abs(shifts - 300 / 9) < 22)
    with pytest.raises(ParameterError):
        D.corrupt_labels(y, 1.5, 10, seed=0)


def test_domain_shift_is_the_documented_map():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 6, 5, 3), dtype=np.uint8)
    a = D.domain_shifted(x, seed=7)
    assert a.shape == x.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, D.domain_shifted(x, seed=7))
    assert not np.array_equal(a, D.domain_shifted(x, seed=8))
    # Contrast 1 and no noise leave only the blur, which fixes a constant image exactly.
    flat = np.full((2, 5, 5), 77, np.uint8)
    np.testing.assert_array_equal(D.domain_shifted(flat, contrast=1.0, noise_std=0.0), flat)
    # Without noise, the map is contrast then the [1 2 1]⊗[1 2 1]/16 blur: check by hand
    # at an interior pixel of a grey image.
    g = rng.integers(0, 256, (1, 5, 5), dtype=np.uint8)
    z = g[0] / 255.0
    zc = z.mean() + 0.5 * (z - z.mean())
    k = np.outer([1, 2, 1], [1, 2, 1]) / 16.0
    want = np.rint(np.sum(k * zc[1:4, 1:4]) * 255)
    assert D.domain_shifted(g, contrast=0.5, noise_std=0.0)[0, 2, 2] == want


def test_channel_mean_std_is_exact():
    x = np.random.default_rng(0).integers(0, 256, (7, 4, 4, 3), dtype=np.uint8)
    mean, std = D.channel_mean_std(x)
    f = x.reshape(-1, 3) / 255.0
    np.testing.assert_allclose(mean, f.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, f.std(0), rtol=1e-12)


# ---------------------------------------------------------------- the real data
@needs("fashion_mnist")
def test_real_fashion_mnist():
    xtr, ytr, xte, yte = D.fashion_mnist_arrays(SHARED)
    assert xtr.shape == (60000, 28, 28) and xte.shape == (10000, 28, 28)
    np.testing.assert_array_equal(np.bincount(ytr), [6000] * 10)
    np.testing.assert_array_equal(np.bincount(yte), [1000] * 10)
    mean, std = D.channel_mean_std(xtr)
    assert abs(mean[0] - 0.2860) < 1e-4 and abs(std[0] - 0.3530) < 1e-4  # published values


@needs("cifar10")
def test_real_cifar10_and_load_dataset():
    xtr, ytr, xte, yte = D.cifar10_arrays(SHARED)  # ~7-20 s the first time, then cached
    assert xtr.shape == (50000, 32, 32, 3) and xte.shape == (10000, 32, 32, 3)
    np.testing.assert_array_equal(np.bincount(ytr), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(yte), [1000] * 10)
    mean, _ = D.channel_mean_std(xtr)
    # The data README's measured means of the JPEG copy (4 decimals); the official archive
    # (0.4914, 0.4822, 0.4465) is within the same 2e-4.
    np.testing.assert_allclose(mean, [0.4913, 0.4821, 0.4465], atol=2e-4)
    ds = D.load_dataset("cifar10", SHARED, n_train=1000, seed=0, label_noise=0.1)
    assert tuple(ds.x_train.shape) == (1000, 3, 32, 32) and ds.x_train.dtype.is_floating_point is False
    assert np.bincount(ytr[ds.train_index], minlength=10).tolist() == [100] * 10
    assert int((ds.y_train.numpy() != ytr[ds.train_index]).sum()) == 100
    assert ds.x_shift.shape == ds.x_test.shape and ds.n_classes == 10 and ds.in_channels == 3
    # The channel-first tensor holds the same pixels as the HWC array.
    np.testing.assert_array_equal(ds.x_test[5].permute(1, 2, 0).numpy(), xte[5])


def test_failed_download_is_one_sentence(tmp_path, monkeypatch):
    """Offline, torchvision's download raises URLError; the reader gets DataNotFound."""
    import urllib.error

    import torchvision

    from sgdtemp.data import DataNotFound, cifar10_arrays

    def offline(*a, **k):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataNotFound) as e:
        cifar10_arrays(tmp_path, download=True)
    msg = str(e.value)
    assert "could not be downloaded" in msg and "SGDTEMP_DATA" in msg and "\n" not in msg
