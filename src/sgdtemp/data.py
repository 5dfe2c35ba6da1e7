"""Image data sets as uint8 arrays: read once, cached, plus their corruptions.

Sources, looked up under one data folder (:func:`resolve_data_dir`):

* Fashion-MNIST: the original IDX files (``.gz`` or gunzipped) in
  ``DATA/fashion-mnist/`` or torchvision's ``DATA/FashionMNIST/raw/``.
* CIFAR-10: torchvision's official archive ``DATA/cifar-10-batches-py/``, or the JPEG
  copy ``DATA/cifar10-jpeg.tar.gz`` (ImageFolder layout
  ``cifar10-jpeg/{train,test}/<class>/NNNN.jpg``, read straight from the tar), or that
  folder extracted as ``DATA/cifar10-jpeg/``.

Decoded arrays are cached as ``.npz`` in :func:`cache_dir` (``$SGDTEMP_CACHE``, else
``~/.cache/sgdtemp``), keyed by the source's path, size and modification time, and kept
in memory for the life of the process. The data folder itself is only ever read.

:func:`load_dataset` returns a :class:`Dataset` of uint8 image tensors in (N, C, H, W)
layout, with a seeded stratified training subset, optional random-label corruption
(:func:`corrupt_labels`) and a fixed domain-shifted copy of the test set
(:func:`domain_shifted`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from sgdtemp.files import atomic_write_bytes
from sgdtemp.params import ParameterError

DATA_ENV = "SGDTEMP_DATA"
CACHE_ENV = "SGDTEMP_CACHE"
DATASETS = ("cifar10", "fashion_mnist")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_CACHE_FORMAT = 1  # bump when the cached arrays' layout changes

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


class DataNotFound(ParameterError):
    """A data set is not in the data folder (and was not to be downloaded)."""


def _download(fetch, name: str, root: Path):
    """Run torchvision's download; a failure (offline, say) becomes one sentence."""
    try:
        return fetch()
    except (OSError, RuntimeError, ValueError) as e:  # URLError is an OSError
        raise DataNotFound(
            f"{name} is not in {root} and could not be downloaded there ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else 'no detail'}); offline, set {DATA_ENV} to a "
            f"folder holding the data set."
        ) from None


# ---------------------------------------------------------------- folders
def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: ``data_dir``, else ``$SGDTEMP_DATA``, else ``~/.cache/sgdtemp/data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path("~/.cache/sgdtemp/data").expanduser()


def cache_dir() -> Path:
    """Where decoded arrays are cached: ``$SGDTEMP_CACHE``, else ``~/.cache/sgdtemp``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path("~/.cache/sgdtemp").expanduser()


_MEMORY: dict[str, Arrays] = {}


def _source_key(kind: str, sources: list[Path]) -> str:
    """Hash of what the arrays are decoded from: a changed file gives a new key."""
    h = hashlib.sha256(f"{kind}:{_CACHE_FORMAT}".encode())
    for p in sources:
        st = p.stat()
        h.update(f"|{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
    return f"{kind}-{h.hexdigest()[:16]}"


def _cached(key: str, build: Callable[[], Arrays]) -> Arrays:
    """Arrays from memory, else from the ``.npz`` cache, else ``build()`` and cache them."""
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir() / "arrays" / f"{key}.npz"
    arrays = None
    if path.exists():
        try:
            with np.load(path) as z:
                arrays = tuple(z[n] for n in ("x_train", "y_train", "x_test", "y_test"))
        except (OSError, ValueError, KeyError):
            arrays = None  # a damaged cache file is rebuilt, not trusted
    if arrays is None:
        arrays = build()
        buf = io.BytesIO()
        np.savez(buf, **dict(zip(("x_train", "y_train", "x_test", "y_test"), arrays)))
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError:
            pass  # an unwritable cache only costs time
    for a in arrays:
        a.flags.writeable = False  # shared between callers: nobody may edit it in place
    _MEMORY[key] = arrays
    _KEY_OF.update({id(a): f"{key}-{n}" for a, n in zip(arrays, ("xtr", "ytr", "xte", "yte"))})
    return arrays


_KEY_OF: dict[int, str] = {}  # id of a cached array → its cache key (arrays live in _MEMORY)
_DERIVED: dict[str, np.ndarray] = {}


def _derived(base: np.ndarray, name: str, build: Callable[[], np.ndarray]) -> np.ndarray:
    """``build()``, a function of the cached array ``base``, itself cached (memory + .npy)."""
    if id(base) not in _KEY_OF:
        return build()
    key = f"{_KEY_OF[id(base)]}-{name}"
    if key in _DERIVED:
        return _DERIVED[key]
    path = cache_dir() / "arrays" / f"{key}.npy"
    out = None
    if path.exists():
        try:
            out = np.load(path)
        except (OSError, ValueError):
            out = None
    if out is None:
        out = np.asarray(build())
        buf = io.BytesIO()
        np.save(buf, out)
        try:
            atomic_write_bytes(path, buf.getvalue())
        except OSError:
            pass
    out.flags.writeable = False
    _DERIVED[key] = out
    return out


# ---------------------------------------------------------------- Fashion-MNIST
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Array stored in an IDX file (``.gz`` or plain).

    Format: 2 zero bytes, a type byte (0x08 = uint8, ...), a byte n_dims, then n_dims
    big-endian uint32 sizes, then the data in C order.
    """
    path = Path(path)
    raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file.")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    data = np.frombuffer(raw, dtype, count=int(np.prod(shape)), offset=4 + 4 * ndim)
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (folder / name).exists():
            return folder / name
    return None


_FASHION_STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                  "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def fashion_mnist_arrays(data_dir: str | os.PathLike | None = None, *,
                         download: bool = False) -> Arrays:
    """Fashion-MNIST as ``(x_train, y_train, x_test, y_test)``.

    Images uint8 of shape (60000, 28, 28) and (10000, 28, 28); labels int64 in 0..9.
    Read from ``DATA/fashion-mnist/`` or ``DATA/FashionMNIST/raw/`` (IDX, ``.gz`` or
    plain); with ``download=True`` torchvision fetches them first if missing (online only).
    """
    root = resolve_data_dir(data_dir)
    folders = [root / "fashion-mnist", root / "FashionMNIST" / "raw"]

    def find() -> list[Path] | None:
        for folder in folders:
            files = [_find_idx(folder, s) for s in _FASHION_STEMS]
            if all(files):
                return files  # type: ignore[return-value]
        return None

    files = find()
    if files is None and download:
        import torchvision

        _download(lambda: (torchvision.datasets.FashionMNIST(str(root), train=True, download=True),
                           torchvision.datasets.FashionMNIST(str(root), train=False, download=True)),
                  "Fashion-MNIST", root)
        files = find()
    if files is None:
        raise DataNotFound(
            f"Fashion-MNIST was not found in {folders[0]} or {folders[1]}: set "
            f"{DATA_ENV} to a folder holding fashion-mnist/*-ubyte.gz, or pass download=True online."
        )

    def build() -> Arrays:
        xtr, ytr, xte, yte = (read_idx(f) for f in files)
        return (xtr.astype(np.uint8), ytr.astype(np.int64),
                xte.astype(np.uint8), yte.astype(np.int64))

    return _cached(_source_key("fashion_mnist", files), build)


# ---------------------------------------------------------------- CIFAR-10
def _jpeg_members(names: list[str]) -> dict[str, list[tuple[int, str]]]:
    """Sorted (class index, member name) per split for ``*/{train,test}/<class>/*.jpg``."""
    out: dict[str, list[tuple[int, str]]] = {"train": [], "test": []}
    cls_index = {c: i for i, c in enumerate(CIFAR10_CLASSES)}
    for name in names:
        parts = name.strip("/").split("/")
        if len(parts) >= 3 and parts[-1].lower().endswith((".jpg", ".jpeg", ".png")):
            split, cls = parts[-3], parts[-2]
            if split in out and cls in cls_index:
                out[split].append((cls_index[cls], name))
    for split in out:
        out[split].sort(key=lambda t: (t[0], t[1]))
    return out


def _decode_images(items: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    x = np.empty((len(items), 32, 32, 3), np.uint8)
    y = np.empty(len(items), np.int64)
    for i, (label, blob) in enumerate(items):
        with Image.open(io.BytesIO(blob)) as im:
            x[i] = np.asarray(im.convert("RGB"))
        y[i] = label
    return x, y


def _cifar_from_tar(path: Path) -> Arrays:
    """Decode every JPEG of the ImageFolder tar, in (class, file name) order per split."""
    blobs: dict[str, bytes] = {}
    with tarfile.open(path, "r:*") as tar:
        for m in tar:  # one sequential pass: a .gz tar cannot seek cheaply
            if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg", ".png")):
                blobs[m.name] = tar.extractfile(m).read()
    members = _jpeg_members(list(blobs))
    xtr, ytr = _decode_images([(c, blobs[n]) for c, n in members["train"]])
    xte, yte = _decode_images([(c, blobs[n]) for c, n in members["test"]])
    return xtr, ytr, xte, yte


def _cifar_from_folder(folder: Path) -> Arrays:
    names = [str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()]
    members = _jpeg_members(names)
    xtr, ytr = _decode_images([(c, (folder / n).read_bytes()) for c, n in members["train"]])
    xte, yte = _decode_images([(c, (folder / n).read_bytes()) for c, n in members["test"]])
    return xtr, ytr, xte, yte


_CIFAR_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_TEST_BATCH = "test_batch"


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file of the official python archive: a pickled dict whose ``b"data"`` is
    uint8 (n, 3072), each row the 1024 red, then green, then blue values of a 32×32 image
    in row-major order, and ``b"labels"`` n class indices. Returns HWC images and labels."""
    import pickle

    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")  # the archive was pickled by Python 2
    data = d.get(b"data", d.get("data"))
    labels = d.get(b"labels", d.get("labels"))
    if data is None or labels is None:
        raise ValueError(f"{path} is not a CIFAR-10 batch (no data or labels).")
    x = np.asarray(data, np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(x), np.asarray(labels, np.int64)


def _cifar_from_batches(folder: Path) -> Arrays:
    """The five training batches in order, then the test batch (torchvision's order).

    Read here rather than through torchvision, whose reader also insists on the archive's
    published md5 sums: the same format written by a test (a few images) reads the same way.
    """
    parts = [_read_cifar_batch(folder / n) for n in _CIFAR_TRAIN_BATCHES]
    xte, yte = _read_cifar_batch(folder / _CIFAR_TEST_BATCH)
    return (np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts]),
            xte, yte)


def _cifar_download(root: Path) -> None:
    import torchvision

    torchvision.datasets.CIFAR10(str(root), train=True, download=True)
    torchvision.datasets.CIFAR10(str(root), train=False, download=True)


def cifar10_arrays(data_dir: str | os.PathLike | None = None, *,
                   download: bool = False) -> Arrays:
    """CIFAR-10 as ``(x_train, y_train, x_test, y_test)``.

    Images uint8 (50000, 32, 32, 3) and (10000, 32, 32, 3), HWC, RGB; labels int64 in
    0..9 in torchvision's class order (airplane ... truck). Looks, in order, for
    ``DATA/cifar-10-batches-py`` (torchvision's archive), ``DATA/cifar10-jpeg.tar.gz``
    and ``DATA/cifar10-jpeg/``; with ``download=True`` torchvision downloads the archive
    into DATA when none is there (online only). Decoding the JPEG copy takes ~20 s once;
    later calls read the cache.
    """
    root = resolve_data_dir(data_dir)
    batches = root / "cifar-10-batches-py"
    tar = root / "cifar10-jpeg.tar.gz"
    folder = root / "cifar10-jpeg"
    if batches.is_dir():
        files = [batches / n for n in (*_CIFAR_TRAIN_BATCHES, _CIFAR_TEST_BATCH)]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise DataNotFound(f"CIFAR-10 in {batches} lacks {', '.join(missing)}: delete the folder "
                               f"to download it again, or set {DATA_ENV} to a complete copy.")
        return _cached(_source_key("cifar10-batches", files), lambda: _cifar_from_batches(batches))
    if tar.is_file():
        return _cached(_source_key("cifar10-jpeg-tar", [tar]), lambda: _cifar_from_tar(tar))
    if folder.is_dir():
        return _cached(_source_key("cifar10-jpeg-dir", [folder]),
                       lambda: _cifar_from_folder(folder))
    if download:
        _download(lambda: _cifar_download(root), "CIFAR-10", root)
        return cifar10_arrays(root)
    raise DataNotFound(
        f"CIFAR-10 was not found in {root} (looked for cifar-10-batches-py, cifar10-jpeg.tar.gz "
        f"and cifar10-jpeg/): set {DATA_ENV} to a folder holding cifar10-jpeg.tar.gz or "
        f"cifar-10-batches-py, or pass download=True online."
    )


# ---------------------------------------------------------------- is it there?
_NAMES = {"cifar10": "CIFAR-10", "fashion_mnist": "Fashion-MNIST"}
_LOOKED_FOR = {
    "cifar10": "cifar-10-batches-py/, cifar10-jpeg.tar.gz or cifar10-jpeg/",
    "fashion_mnist": "the four IDX files in fashion-mnist/ or FashionMNIST/raw/",
}


def dataset_source(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """Where data set ``name`` lies in the data folder, found without reading it
    (the first of the places its loader reads from); None when it is not there."""
    root = resolve_data_dir(data_dir)
    if name == "cifar10":
        batches = root / "cifar-10-batches-py"
        if all((batches / n).is_file() for n in (*_CIFAR_TRAIN_BATCHES, _CIFAR_TEST_BATCH)):
            return batches  # an incomplete archive (an interrupted download) is not the data
        for cand in (root / "cifar10-jpeg.tar.gz", root / "cifar10-jpeg"):
            if cand.exists():
                return cand
        return None
    if name == "fashion_mnist":
        for folder in (root / "fashion-mnist", root / "FashionMNIST" / "raw"):
            if all(_find_idx(folder, s) for s in _FASHION_STEMS):
                return folder
        return None
    raise ParameterError(f"dataset must be one of {', '.join(map(repr, DATASETS))}; got {name!r}.")


def require_dataset(name: str, data_dir: str | os.PathLike | None = None, *,
                    download_param: bool = False) -> Path:
    """The data set's location, or DataNotFound: one sentence naming the data set, the
    folder searched, and what to set (the ``data_dir`` parameter or ``$SGDTEMP_DATA``;
    the ``download`` parameter only when the chapter has one)."""
    found = dataset_source(name, data_dir)
    if found is not None:
        return found
    root = resolve_data_dir(data_dir)
    where = ("the parameter data_dir" if data_dir is not None
             else f"the environment variable {DATA_ENV} (now {os.environ.get(DATA_ENV) or 'unset'})"
             " or the parameter data_dir")
    also = ", or let the chapter fetch it online with -p download True" if download_param else ""
    raise DataNotFound(
        f"{_NAMES[name]} is not in {root} (looked for {_LOOKED_FOR[name]}): set {where} to a "
        f"folder holding it{also}."
    )


def available(name: str, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether the data set ``name`` can be read from the data folder without downloading
    (:func:`dataset_source` finds it; the files' contents are not checked)."""
    return dataset_source(name, data_dir) is not None


# ---------------------------------------------------------------- subsets and corruptions
def stratified_subset(y: np.ndarray, n: int, n_classes: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n`` examples, ``n // K`` per class (the first ``n % K`` classes
    get one more), drawn uniformly without replacement within each class."""
    y = np.asarray(y)
    if not 1 <= n <= len(y):
        raise ParameterError(f"n_train must be an integer between 1 and {len(y)}; got {n!r}.")
    rng = np.random.default_rng([seed, 101])
    counts = np.full(n_classes, n // n_classes)
    counts[: n % n_classes] += 1
    picked = []
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        if counts[c] > len(idx):
            raise ParameterError(f"n_train must be at most {n_classes * len(idx)} for a "
                                 f"class-balanced subset; got {n!r}.")
        picked.append(rng.choice(idx, size=counts[c], replace=False))
    return np.sort(np.concatenate(picked))


def corrupt_labels(y: np.ndarray, fraction: float, n_classes: int, seed: int) -> np.ndarray:
    """Labels with exactly ``round(fraction·N)`` of them replaced by a wrong one.

    The corrupted examples are drawn uniformly without replacement; each gets a label
    drawn uniformly from the K − 1 classes *other* than its true one, so exactly that
    fraction of the returned labels is wrong (a "random label" in the sense of Zhang et
    al. would also keep the true label with probability 1/K; we do not).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ParameterError(f"label_noise must be a number between 0 and 1; got {fraction!r}.")
    y = np.asarray(y, np.int64).copy()
    rng = np.random.default_rng([seed, 202])
    k = int(round(fraction * len(y)))
    idx = rng.choice(len(y), size=k, replace=False)
    shift = rng.integers(1, n_classes, size=k)  # 1..K-1: never the true class
    y[idx] = (y[idx] + shift) % n_classes
    return y


def domain_shifted(x: np.ndarray, seed: int = 0, *, contrast: float = 0.5,
                   noise_std: float = 0.08, strength: float = 1.0) -> np.ndarray:
    """A fixed corruption of uint8 images (N, H, W) or (N, H, W, C), same shape and dtype.

    Every image goes through the same three steps, on the [0, 1] scale, each scaled by the
    corruption ``strength`` s ∈ [0, 1]:

    1. contrast reduction: x ← m + c (x − m), m its own per-channel mean,
       c = 1 − s·(1 − ``contrast``) (s = 1: c = ``contrast``, halved by default);
    2. blur: x ← (1 − s)·x + s·K∗x, K the 3×3 binomial kernel [1 2 1]ᵀ[1 2 1]/16 with
       edge-replicating borders;
    3. additive Gaussian noise of std s·``noise_std`` (seeded by ``seed``; the same draws at
       every s), then clip to [0, 1] and round to uint8.

    s = 1 is the original corruption, bit for bit (the reference runs' shifted test set);
    s = 0 returns the images unchanged; in between each step is weakened linearly, so the
    corruptions at different s are nested. The result depends only on ``x``, ``seed`` and
    the three numbers.
    """
    x = np.asarray(x)
    if x.dtype != np.uint8 or x.ndim not in (3, 4):
        raise ValueError("domain_shifted expects uint8 images (N, H, W) or (N, H, W, C).")
    if not 0.0 <= strength <= 1.0:
        raise ParameterError(f"shift_strength must be a number between 0 and 1; got {strength!r}.")
    z = x.astype(np.float32) / 255.0
    if z.ndim == 3:
        z = z[..., None]
    if strength == 1.0:  # the original arithmetic, unchanged
        c, s, sigma = contrast, 1.0, noise_std
    else:
        c, s, sigma = 1.0 - strength * (1.0 - contrast), strength, strength * noise_std
    m = z.mean(axis=(1, 2), keepdims=True)
    z = m + c * (z - m)
    p = np.pad(z, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    zb = (p[:, :-2] + 2 * p[:, 1:-1] + p[:, 2:]) / 4.0  # vertical [1 2 1]/4
    zb = (zb[:, :, :-2] + 2 * zb[:, :, 1:-1] + zb[:, :, 2:]) / 4.0  # horizontal
    z = zb if s == 1.0 else (1.0 - s) * z + s * zb
    rng = np.random.default_rng([seed, 303])
    z = z + sigma * rng.standard_normal(z.shape, dtype=np.float32)
    out = np.rint(np.clip(z, 0.0, 1.0) * 255.0).astype(np.uint8)
    return out.reshape(x.shape)


def channel_mean_std(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images (N, H, W[, C]) on the [0, 1] scale,
    exact (from the 256-bin histogram, so no float image copy is needed)."""
    x = np.asarray(x)
    chans = x.reshape(-1, 1) if x.ndim == 3 else x.reshape(-1, x.shape[-1])
    levels = np.arange(256) / 255.0
    means, stds = [], []
    for c in range(chans.shape[1]):
        h = np.bincount(chans[:, c], minlength=256).astype(np.float64)
        p = h / h.sum()
        mu = float(p @ levels)
        means.append(mu)
        stds.append(float(np.sqrt(p @ (levels - mu) ** 2)))
    return tuple(means), tuple(stds)


# ---------------------------------------------------------------- the data set a run uses
@dataclass
class Dataset:
    """Images as uint8 tensors (N, C, H, W), labels as int64 tensors.

    ``mean``/``std`` are the per-channel statistics of the full training set on the
    [0, 1] scale, used to normalise: x_float = (x/255 − mean)/std.
    ``x_shift``/``y_shift`` is :func:`domain_shifted` of the test set (same labels), at
    corruption strength ``shift_strength``.
    """

    name: str
    x_train: "torch.Tensor"  # noqa: F821
    y_train: "torch.Tensor"  # noqa: F821
    x_test: "torch.Tensor"  # noqa: F821
    y_test: "torch.Tensor"  # noqa: F821
    x_shift: "torch.Tensor"  # noqa: F821
    y_shift: "torch.Tensor"  # noqa: F821
    n_classes: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    train_index: np.ndarray  # indices of the training subset in the full training set
    label_noise: float = 0.0
    shift_strength: float = 1.0

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])




def load_dataset(name: str, data_dir: str | os.PathLike | None = None, *,
                 n_train: int | None = None, seed: int = 0, label_noise: float = 0.0,
                 shift_seed: int = 0, shift_strength: float = 1.0,
                 download: bool = False) -> Dataset:
    """The data set ``name`` ∈ {"cifar10", "fashion_mnist"} as a :class:`Dataset`.

    ``n_train``: a class-balanced subset of that many training examples
    (:func:`stratified_subset`, seeded by ``seed``; None = all). ``label_noise``: the
    fraction of training labels replaced by a wrong one (:func:`corrupt_labels`, seeded by
    ``seed``). The test set is always complete; the shifted test set is
    :func:`domain_shifted` (``shift_seed``, corruption strength ``shift_strength``) of it,
    the same for every run.
    """
    import torch

    if name == "cifar10":
        xtr, ytr, xte, yte = cifar10_arrays(data_dir, download=download)
        classes = CIFAR10_CLASSES
    elif name == "fashion_mnist":
        xtr, ytr, xte, yte = fashion_mnist_arrays(data_dir, download=download)
        classes = FASHION_MNIST_CLASSES
    else:
        raise ParameterError(f"dataset must be one of {', '.join(map(repr, DATASETS))}; got {name!r}.")
    k = len(classes)
    stats = _derived(xtr, "meanstd", lambda: np.array(channel_mean_std(xtr)))
    mean, std = tuple(map(float, stats[0])), tuple(map(float, stats[1]))
    idx = np.arange(len(ytr)) if n_train is None else stratified_subset(ytr, n_train, k, seed)
    y_train = ytr[idx]
    if label_noise:
        y_train = corrupt_labels(y_train, label_noise, k, seed)
    strength = float(shift_strength)
    name = f"shift{shift_seed}" + ("" if strength == 1.0 else f"-s{strength!r}")
    xsh = _derived(xte, name, lambda: domain_shifted(xte, shift_seed, strength=strength))

    def nchw(a: np.ndarray) -> torch.Tensor:
        a = a[:, None] if a.ndim == 3 else a.transpose(0, 3, 1, 2)
        return torch.from_numpy(np.array(a, order="C"))  # a writable copy: the cache is read-only

    return Dataset(
        name=name,
        x_train=nchw(xtr[idx]), y_train=torch.from_numpy(np.array(y_train, np.int64)),
        x_test=nchw(xte), y_test=torch.from_numpy(np.array(yte, np.int64)),
        x_shift=nchw(xsh), y_shift=torch.from_numpy(np.array(yte, np.int64)),
        n_classes=k, mean=mean, std=std, classes=classes, train_index=idx,
        label_noise=float(label_noise), shift_strength=strength,
    )
