"""Training networks with plain SGD at an exactly known learning rate and batch size.

The loop follows airbench's shape, without its tricks: the images sit on the device
as uint8 tensors, each epoch draws one seeded permutation and cuts it into
``N // B`` batches of exactly ``B`` examples (the last partial batch is dropped, so
every step has the same temperature T = η/B), augmentation (random 4-pixel-padded
crop and horizontal flip) is done on the whole batch with tensor ops, and the update
is ``torch.optim.SGD`` with momentum and weight decay 0 unless asked otherwise.

:func:`run_training` takes one configuration (see :func:`training_config`) and returns
a JSON-serialisable record of curves and final metrics; the results store adds
provenance and caches it.
"""

from __future__ import annotations

import os

# Spinning OpenMP threads collapse throughput when the CPU is shared (measured: 2 threads
# at ~100 img/s instead of ~1500 under a load of 5 on 2 cores). Read once, when torch
# loads: effective only if this module is the first to import torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import math
import time
from contextlib import contextmanager, nullcontext
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from sgdtemp.data import DATASETS, Dataset, load_dataset, stratified_subset
from sgdtemp.models import MODELS, build_model
from sgdtemp.params import (
    ParameterError, in_range, non_negative, non_negative_int, one_of, optional, positive,
    positive_int,
)

# Full training-set sizes, to validate n_train and batch_size before loading any data.
TRAIN_SIZES = {"cifar10": 50_000, "fashion_mnist": 60_000}
DIVERGENCE_FACTOR = 1e3  # a loss above 1000 × the initial loss counts as divergence
EVAL_BATCH = 1000


def _bool(v: Any) -> str | None:
    return None if isinstance(v, bool) else "True or False"


def _optional_text(v: Any) -> str | None:
    return None if v is None or (isinstance(v, str) and v) else "None or a folder path"


# name: (default, check, doc). A default of None for augment means "True for cifar10".
CONFIG_KEYS: dict[str, tuple[Any, Any, str]] = {
    "dataset": ("cifar10", one_of(*DATASETS), "data set"),
    "data_dir": (None, _optional_text, "data folder (None: $SGDTEMP_DATA, else ~/.cache/sgdtemp/data)"),
    "model": ("small_cnn", one_of(*MODELS), "network"),
    "width": (None, optional(positive_int), "network width (None: the model's default)"),
    "lr": (0.05, positive, "learning rate η"),
    "batch_size": (128, positive_int, "batch size B (every step uses exactly B examples)"),
    "epochs": (10, non_negative_int, "passes over the training set"),
    "seed": (0, non_negative_int, "seed of the initial weights, batch order and augmentation"),
    "data_seed": (0, non_negative_int, "seed of the training subset and the label corruption"),
    "momentum": (0.0, in_range(0.0, 0.999), "SGD momentum (0: plain SGD)"),
    "weight_decay": (0.0, non_negative, "L2 weight decay"),
    "n_train": (None, optional(positive_int), "training examples, a class-balanced subset (None: all)"),
    "label_noise": (0.0, in_range(0.0, 1.0), "fraction of training labels replaced by a wrong one"),
    "augment": (None, optional(_bool), "random crop + flip (None: True for cifar10, False otherwise)"),
    "device": ("auto", one_of("auto", "cpu", "cuda"), "where to train (auto: cuda if available)"),
    "curvature": (False, _bool, "measure Hessian trace and top eigenvalue at the end"),
    "curvature_examples": (1024, positive_int, "training examples used for curvature and noise"),
    "curvature_probes": (32, positive_int, "Hutchinson probes for the Hessian trace"),
    "curvature_iters": (20, positive_int, "Lanczos iterations for the top eigenvalue"),
    "gradient_noise": (False, _bool, "measure tr Σ of per-example gradients at the end"),
    "eval_train_examples": (10_000, positive_int, "size of the fixed training subset evaluated each epoch"),
    "eval_test_examples": (None, optional(positive_int),
                           "size of the fixed subset of the (shifted) test set evaluated (None: all)"),
}


def training_config(**kw: Any) -> dict:
    """A complete, validated training configuration: ``kw`` over the defaults.

    Raises :class:`ParameterError` (one sentence naming the key) for an unknown key, a bad
    value, or ``batch_size`` larger than the number of training examples.
    """
    for k in kw:
        if k not in CONFIG_KEYS:
            raise ParameterError(f"{k!r} is not a training option; allowed: {', '.join(CONFIG_KEYS)}.")
    cfg = {k: kw.get(k, d) for k, (d, _, _) in CONFIG_KEYS.items()}
    for k, (_, check, _) in CONFIG_KEYS.items():
        why = check(cfg[k])
        if why is not None:
            raise ParameterError(f"{k} must be {why}; got {cfg[k]!r}.")
    # Plain numbers, so that equal configurations hash equally in the results store.
    for k in ("lr", "momentum", "weight_decay", "label_noise"):
        cfg[k] = float(cfg[k])
    n_full = TRAIN_SIZES[cfg["dataset"]]
    if cfg["n_train"] is not None and cfg["n_train"] > n_full:
        raise ParameterError(f"n_train must be at most {n_full} for {cfg['dataset']}; got {cfg['n_train']!r}.")
    n = cfg["n_train"] or n_full
    if cfg["batch_size"] > n:
        raise ParameterError(f"batch_size must be between 1 and n_train = {n}; got {cfg['batch_size']!r}.")
    if cfg["augment"] is None:
        cfg["augment"] = cfg["dataset"] == "cifar10"
    return cfg


# ---------------------------------------------------------------- batch operations
def normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x/255 − mean)/std per channel, for uint8 images (N, C, H, W); float32."""
    return (x.float() / 255.0 - mean) / std


def random_crop_flip(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image shifted by a uniform offset in [−pad, pad]² (zero fill, as torchvision's
    ``RandomCrop(size, padding=pad)``) and mirrored left–right with probability ½.

    One gather for the whole batch (N, C, H, W), any dtype.
    """
    n, c, h, w = x.shape
    dev = x.device
    xp = F.pad(x, (pad, pad, pad, pad))
    off = torch.randint(0, 2 * pad + 1, (2, n), generator=generator, device=generator.device).to(dev)
    flip = (torch.rand(n, generator=generator, device=generator.device) < 0.5).to(dev)
    rows = off[0, :, None] + torch.arange(h, device=dev)  # (n, h)
    cols = torch.arange(w, device=dev).expand(n, w)
    cols = torch.where(flip[:, None], cols.flip(1), cols) + off[1, :, None]  # (n, w)
    b = torch.arange(n, device=dev)[:, None, None, None]
    ch = torch.arange(c, device=dev)[None, :, None, None]
    return xp[b, ch, rows[:, None, :, None], cols[:, None, None, :]]


@torch.no_grad()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, mean: torch.Tensor,
             std: torch.Tensor, *, memory_format=torch.contiguous_format,
             autocast=nullcontext) -> tuple[float, float]:
    """Mean cross-entropy (nats) and accuracy of ``model`` (eval mode) on uint8 images."""
    was_training = model.training
    model.eval()
    total, correct = 0.0, 0
    for i in range(0, len(y), EVAL_BATCH):
        xb = normalise(x[i:i + EVAL_BATCH], mean, std).contiguous(memory_format=memory_format)
        yb = y[i:i + EVAL_BATCH]
        with autocast():
            out = model(xb)
        total += float(F.cross_entropy(out.float(), yb, reduction="sum"))
        correct += int((out.argmax(1) == yb).sum())
    model.train(was_training)
    return total / len(y), correct / len(y)


@contextmanager
def _deterministic(on: bool) -> Iterator[None]:
    """torch.use_deterministic_algorithms for the duration, then the caller's setting back."""
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    if on:
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device must be 'cpu' or 'auto' on a machine without CUDA; got 'cuda'.")
    return torch.device(name)


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(dev)}"
    return "cpu"


# ---------------------------------------------------------------- the run
def run_training(config: dict, *, progress: bool = True, data: Dataset | None = None) -> dict:
    """Train one network with SGD and return its record (JSON-serialisable).

    ``config`` is completed and validated by :func:`training_config`. ``data`` may pass a
    :class:`Dataset` already loaded for this config (to skip loading in a sweep).

    Seeds: ``seed`` sets the initial weights, the batch order and the augmentation;
    ``data_seed`` the training subset and the label corruption (so runs that differ only
    in ``seed`` see the same data). On the CPU the same config gives identical numbers.

    Record: ``config`` (completed); ``curves`` (``epoch`` 0..E and, at each,
    ``train_loss``/``train_acc`` on a fixed subset of up to ``eval_train_examples``
    training examples (with their possibly corrupted labels, no augmentation),
    ``test_*`` and ``shifted_test_*`` on a fixed subset of ``eval_test_examples`` test
    images (None: all; a fixed class-balanced sample otherwise) and their domain-shifted
    copies; BatchNorm in eval mode;
    losses are mean cross-entropy in nats, accuracies fractions); ``final`` (the last
    recorded values: for a diverged run, those of the last completed epoch);
    ``diverged`` and ``diverged_step`` (the first 0-based step whose loss was non-finite or
    above 1000 × the initial training loss; training stops there); ``curvature``
    (``hessian_trace``, ``hessian_trace_stderr``, ``top_eigenvalue`` of the training loss
    on ``curvature_examples`` examples) or None; ``noise`` (``grad_cov_trace`` = tr Σ) or
    None; ``images_per_second`` (training steps only); ``steps``; ``n_parameters``;
    ``device``.
    """
    cfg = training_config(**config)
    dev = _device(cfg["device"])
    on_cpu = dev.type == "cpu"
    with _deterministic(on_cpu):
        return _run(cfg, dev, progress, data)


def _run(cfg: dict, dev: torch.device, progress: bool, data: Dataset | None) -> dict:
    from tqdm import tqdm

    if data is None:
        data = load_dataset(cfg["dataset"], cfg["data_dir"], n_train=cfg["n_train"],
                            seed=cfg["data_seed"], label_noise=cfg["label_noise"])
    on_cuda = dev.type == "cuda"
    # bf16 autocast on the GPU only: on the CPU it is slower and changes the numbers.
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if on_cuda else nullcontext
    # channels_last is the fast layout for convolutions on both CPU (oneDNN) and GPU.
    conv = cfg["model"] != "mlp"
    fmt = torch.channels_last if conv else torch.contiguous_format

    with torch.random.fork_rng(devices=[]):  # seeded weights, caller's RNG state untouched
        torch.manual_seed(cfg["seed"])
        model = build_model(cfg["model"], data.n_classes, data.in_channels,
                            image_size=int(data.x_train.shape[-1]), width=cfg["width"])
    model = model.to(dev, memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                          weight_decay=cfg["weight_decay"])
    n_params = sum(p.numel() for p in model.parameters())

    mean = torch.tensor(data.mean, device=dev).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=dev).view(1, -1, 1, 1)
    x_train, y_train = data.x_train.to(dev), data.y_train.to(dev)
    n, bsz = len(y_train), cfg["batch_size"]
    if bsz > n:
        raise ParameterError(f"batch_size must be between 1 and n_train = {n}; got {bsz!r}.")
    steps_per_epoch = n // bsz
    # A fixed training subset for evaluation, the same for every seed of this data.
    eval_idx = torch.from_numpy(np.random.default_rng(12345).permutation(n)[: cfg["eval_train_examples"]])
    eval_idx = eval_idx.to(dev)
    # The test files are sorted by class: a subset is a fixed class-balanced sample.
    n_test = len(data.y_test)
    k_test = min(cfg["eval_test_examples"] or n_test, n_test)
    test_idx = torch.from_numpy(
        stratified_subset(data.y_test.numpy(), k_test, data.n_classes, 0) if k_test < n_test
        else np.arange(n_test))
    evalsets = {
        "train": (x_train[eval_idx], y_train[eval_idx]),
        "test": (data.x_test[test_idx].to(dev), data.y_test[test_idx].to(dev)),
        "shifted_test": (data.x_shift[test_idx].to(dev), data.y_shift[test_idx].to(dev)),
    }
    names = [f"{s}_{m}" for s in evalsets for m in ("loss", "acc")]
    curves: dict[str, list] = {"epoch": [], **{k: [] for k in names}}

    def record(epoch: int) -> None:
        curves["epoch"].append(epoch)
        for s, (xe, ye) in evalsets.items():
            loss, acc = evaluate(model, xe, ye, mean, std, memory_format=fmt, autocast=autocast)
            curves[f"{s}_loss"].append(loss)
            curves[f"{s}_acc"].append(acc)

    record(0)
    initial_loss = curves["train_loss"][0]
    threshold = DIVERGENCE_FACTOR * initial_loss
    # Batch order and augmentation draw from their own generators, seeded by the run seed.
    order_gen = torch.Generator().manual_seed(cfg["seed"])
    aug_gen = torch.Generator(device=dev).manual_seed(cfg["seed"] + 1_000_003)
    # Checking the loss forces a GPU sync: there, look at a window of steps at once.
    check_every = 25 if on_cuda else 1
    diverged_step = None
    train_time, train_images, step = 0.0, 0, 0
    bar = tqdm(total=cfg["epochs"] * steps_per_epoch, disable=not progress, unit="step",
               desc=f"{cfg['model']} η={cfg['lr']:g} B={bsz}", leave=False)
    model.train()
    for epoch in range(1, cfg["epochs"] + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=order_gen).to(dev)
        pending: list[torch.Tensor] = []
        for s in range(steps_per_epoch):
            idx = perm[s * bsz:(s + 1) * bsz]
            xb = x_train[idx]
            if cfg["augment"]:
                xb = random_crop_flip(xb, 4, aug_gen)
            xb = normalise(xb, mean, std).contiguous(memory_format=fmt)
            with autocast():
                loss = F.cross_entropy(model(xb).float(), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            pending.append(loss.detach())
            if len(pending) == check_every or s == steps_per_epoch - 1:
                losses = torch.stack(pending).float().cpu().numpy()
                bad = np.flatnonzero(~np.isfinite(losses) | (losses > threshold))
                if bad.size:
                    diverged_step = step - len(pending) + 1 + int(bad[0])
                    break
                pending = []
            opt.step()  # after the check, so a diverged step never updates the weights
            step += 1
            bar.update(1)
        if on_cuda:
            torch.cuda.synchronize()
        train_time += time.perf_counter() - t0
        train_images += (s + 1 if diverged_step is None else s) * bsz
        if diverged_step is not None:
            break
        record(epoch)
        bar.set_postfix(train_loss=f"{curves['train_loss'][-1]:.3f}",
                        test_acc=f"{curves['test_acc'][-1]:.3f}")
    bar.close()

    result: dict[str, Any] = {
        "config": cfg,
        "curves": curves,
        "final": {k: curves[k][-1] for k in names},
        "diverged": diverged_step is not None,
        "diverged_step": diverged_step,
        "curvature": None,
        "noise": None,
        "images_per_second": train_images / train_time if train_time > 0 else None,
        "steps": step,
        "n_parameters": n_params,
        "device": _device_name(dev),
    }
    if diverged_step is None and (cfg["curvature"] or cfg["gradient_noise"]):
        result.update(_end_measurements(model, cfg, x_train, y_train, mean, std, fmt))
    return _plain(result)


def _end_measurements(model, cfg, x_train, y_train, mean, std, fmt) -> dict:
    """Curvature and gradient noise of the final weights on a fixed training subset."""
    from sgdtemp import curvature as curv

    n = len(y_train)
    idx = torch.from_numpy(np.random.default_rng(54321).permutation(n)[: cfg["curvature_examples"]])
    idx = idx.to(x_train.device)
    xs = normalise(x_train[idx], mean, std).contiguous(memory_format=fmt)
    ys = y_train[idx]
    batches = [(xs[i:i + 256], ys[i:i + 256]) for i in range(0, len(ys), 256)]
    out: dict[str, Any] = {}
    if cfg["curvature"]:
        tr, se = curv.hutchinson_trace(model, F.cross_entropy, batches,
                                       n_probes=cfg["curvature_probes"], seed=cfg["seed"])
        top = curv.top_eigenvalue(model, F.cross_entropy, batches,
                                  n_iter=cfg["curvature_iters"], seed=cfg["seed"])
        out["curvature"] = {"hessian_trace": tr, "hessian_trace_stderr": se, "top_eigenvalue": top,
                            "n_examples": len(ys)}
    if cfg["gradient_noise"]:
        out["noise"] = {"grad_cov_trace": curv.gradient_noise_trace(model, F.cross_entropy, batches),
                        "n_examples": len(ys)}
    return out


def _plain(obj: Any) -> Any:
    """Python floats/ints/lists only (numpy and torch scalars become plain numbers)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj
