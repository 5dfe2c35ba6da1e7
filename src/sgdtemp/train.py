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
SCHEDULES = ("constant", "cyclic_lr", "cyclic_batch")
CURVATURE_BATCHNORM = ("eval", "train")


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
    # Options added after the first committed results: the store leaves them out of a run's
    # key while they hold their default (sgdtemp.store.KEYED_WHEN_SET), so old keys stand.
    "depth": (None, optional(positive_int), "hidden layers of the mlp (None: the model's default, 2)"),
    "schedule": ("constant", one_of(*SCHEDULES),
                 "constant η and B, or a cyclic temperature made by cycling η (cyclic_lr) or B "
                 "(cyclic_batch); lr/batch_size give the hottest point T_max = lr/batch_size"),
    "cycle_ratio": (5.0, in_range(1.0, 1000.0), "T_max / T_min of a cyclic schedule"),
    "cycle_epochs": (2.0, in_range(0.01, 1000.0), "period of a cyclic schedule, in epochs"),
    "curvature_frobenius": (False, _bool,
                            "with curvature: also ‖H‖_F from curvature_probes Gaussian probes"),
    "grad_penalty": (0.0, non_negative,
                     "λ of the explicit regularizer: each step descends L̂_B + λ‖∇L̂_B‖² "
                     "(Smith et al.'s implicit regularizer has λ = η/4)"),
    "enhance_alpha": (0.0, non_negative,
                      "noise enhancement α: each step uses two disjoint batches of B and "
                      "ĝ = (1+α)ĝ₁ − αĝ₂ (B_eff = B/(1+2α+2α²)); 0: plain SGD"),
    "curvature_batchnorm": ("eval", one_of(*CURVATURE_BATCHNORM),
                            "with curvature: BatchNorm with its running statistics ('eval'), or "
                            "each of ⌊curvature_examples/B⌋ fixed batches of the run's own B "
                            "normalised by its own statistics ('train': the loss SGD descends)"),
    "noise_scale_every": (0, non_negative_int,
                          "measure the gradient noise scale B_simple = tr Σ/|G|² on "
                          "curvature_examples training examples every this many epochs, from "
                          "epoch 0, and at the last epoch (0: never)"),
    "record_weight_norms": (False, _bool,
                            "record after every epoch the squared norms |w|² of the scale-invariant "
                            "weights (the conv/linear weights that feed a BatchNorm: "
                            "sgdtemp.models.scale_invariant_weights), per layer and summed, and "
                            "the effective temperature T/|w|² (BatchNorm models, trained one at a "
                            "time)"),
    # a float only: an int 1 would key the same run apart from the default 1.0
    "shift_strength": (1.0, lambda v: None if isinstance(v, float) and 0.0 <= v <= 1.0
                       else "a float between 0.0 and 1.0",
                       "strength s of the test set's domain shift (sgdtemp.data.domain_shifted): "
                       "contrast 1 − s/2, s × a 3×3 blur, Gaussian noise of std 0.08·s; 1.0 is "
                       "the original shift, 0.0 none (read by the one-at-a-time loop of "
                       "BatchNorm models)"),
}

#: Options that may differ between runs trained together in one vectorized group.
PER_RUN_KEYS = frozenset({
    "seed", "lr", "momentum", "weight_decay", "label_noise", "curvature", "curvature_examples",
    "curvature_probes", "curvature_iters", "curvature_frobenius", "gradient_noise",
    "grad_penalty", "enhance_alpha", "curvature_batchnorm",
})


def training_config(**kw: Any) -> dict:
    """A complete, validated training configuration: ``kw`` over the defaults.

    Raises :class:`.ParameterError` (one sentence naming the key) for an unknown key, a bad
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
    for k in ("cycle_ratio", "cycle_epochs", "grad_penalty", "enhance_alpha"):
        cfg[k] = float(cfg[k])
    if cfg["enhance_alpha"] > 0 and (cfg["grad_penalty"] > 0 or cfg["schedule"] != "constant"):
        raise ParameterError("enhance_alpha must be 0 when grad_penalty is set or a schedule is "
                             f"used (the two are not combined); got enhance_alpha={cfg['enhance_alpha']:g}.")
    if cfg["enhance_alpha"] > 0 and 2 * cfg["batch_size"] > n:
        raise ParameterError(f"batch_size must be at most n_train/2 = {n // 2} with noise enhancement "
                             f"(two batches a step); got {cfg['batch_size']!r}.")
    if cfg["schedule"] == "cyclic_batch" and round(cfg["batch_size"] * cfg["cycle_ratio"]) > n:
        raise ParameterError(f"batch_size × cycle_ratio (the largest batch of cyclic_batch) must be at "
                             f"most n_train = {n}; got {cfg['batch_size']} × {cfg['cycle_ratio']:g}.")
    if (cfg["curvature"] and cfg["curvature_batchnorm"] == "train"
            and cfg["curvature_examples"] < cfg["batch_size"]):
        raise ParameterError(f"curvature_examples must be at least batch_size = {cfg['batch_size']} "
                             f"with curvature_batchnorm 'train' (whole batches of B); "
                             f"got {cfg['curvature_examples']!r}.")
    if cfg["depth"] is not None and cfg["model"] != "mlp":
        raise ParameterError(f"depth applies to model 'mlp' only; got depth={cfg['depth']!r} "
                             f"with model {cfg['model']!r}.")
    if cfg["augment"] is None:
        cfg["augment"] = cfg["dataset"] == "cifar10"
    return cfg


# ---------------------------------------------------------------- schedules
def temperature_factor(epochs_elapsed: float, ratio: float, period: float) -> float:
    """c(e) ∈ [1/ratio, 1]: the cyclic schedule's T(e)/T_max after ``epochs_elapsed`` epochs.

    A triangle wave of period ``period`` epochs, starting cold: c(e) = 1/r + (1 − 1/r)·tri(e/P),
    ``tri(x) = 1 − |1 − 2·frac(x)|`` (0 at the start of a cycle, 1 half-way).
    """
    x = epochs_elapsed / period
    tri = 1.0 - abs(1.0 - 2.0 * (x - math.floor(x)))
    return 1.0 / ratio + (1.0 - 1.0 / ratio) * tri


def epochs_elapsed(batch_sizes: list[int], n: int) -> np.ndarray:
    """Epochs elapsed when each step starts, from the batch sizes of a run's steps in order
    (its ``schedule_trace``): the engine's rule that an epoch ends when the next batch no
    longer fits in what is left of its n examples (the remainder is dropped)."""
    out, epoch, seen = [], 0, 0
    for b in batch_sizes:
        if seen + b > n:
            epoch, seen = epoch + 1, 0
        out.append(epoch + seen / n)
        seen += b
    return np.asarray(out)


def step_plan(cfg: dict, n: int) -> list[list[tuple[int, float]]]:
    """For every epoch, the (batch size B_t, learning-rate factor c_t) of each of its steps.

    ``constant``: ⌊n/B⌋ steps of (B, 1) (⌊n/2B⌋ with noise enhancement, whose steps each
    use two batches of B). ``cyclic_lr``: steps of B with η_t = η·c(e_t), so
    T_t = T_max·c(e_t). ``cyclic_batch``: η fixed, B_t = round(B/c(e_t)), so T_t = η/B_t ≈
    T_max·c(e_t) (up to rounding B). e_t = epochs elapsed (examples drawn / n) when step t
    starts; an epoch cuts its permutation into consecutive batches and drops the remainder
    that is smaller than the next batch, so every step uses exactly B_t examples.
    """
    B, E = cfg["batch_size"], cfg["epochs"]
    if cfg["schedule"] == "constant":
        # noise enhancement draws two disjoint batches of B a step
        per_step = 2 * B if cfg.get("enhance_alpha", 0.0) > 0 else B
        return [[(B, 1.0)] * (n // per_step) for _ in range(E)]
    ratio, period = cfg["cycle_ratio"], cfg["cycle_epochs"]
    plan = []
    for epoch in range(E):
        steps, seen = [], 0
        while True:
            c = temperature_factor(epoch + seen / n, ratio, period)
            if cfg["schedule"] == "cyclic_lr":
                b, f = B, c
            else:
                b, f = max(1, round(B / c)), 1.0
            if seen + b > n:
                break
            steps.append((b, f))
            seen += b
        plan.append(steps)
    return plan


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


def _evaluation_indices(cfg: dict, data: Dataset, n: int,
                        dev: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed evaluation subsets of a run: ``eval_train_examples`` training indices (a
    seeded permutation, the same for every seed of this data) on ``dev``, and the test
    indices (the test files are sorted by class, so a subset is a fixed class-balanced
    sample; all of them when ``eval_test_examples`` is None)."""
    eval_idx = torch.from_numpy(
        np.random.default_rng(12345).permutation(n)[: cfg["eval_train_examples"]]).to(dev)
    n_test = len(data.y_test)
    k_test = min(cfg["eval_test_examples"] or n_test, n_test)
    test_idx = torch.from_numpy(
        stratified_subset(data.y_test.numpy(), k_test, data.n_classes, 0) if k_test < n_test
        else np.arange(n_test))
    return eval_idx, test_idx


# ---------------------------------------------------------------- the run
def run_training(config: dict, *, progress: bool = True, data: Dataset | None = None) -> dict:
    """Train one network with SGD and return its record (JSON-serialisable).

    ``config`` is completed and validated by :func:`training_config`. ``data`` may pass a
    :class:`.Dataset` already loaded for this config (to skip loading in a sweep).

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

    if data is None or data.shift_strength != cfg["shift_strength"]:
        data = load_dataset(cfg["dataset"], cfg["data_dir"], n_train=cfg["n_train"],
                            seed=cfg["data_seed"], label_noise=cfg["label_noise"],
                            shift_strength=cfg["shift_strength"])
    on_cuda = dev.type == "cuda"
    # bf16 autocast on the GPU only: on the CPU it is slower and changes the numbers.
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if on_cuda else nullcontext
    # channels_last is the fast layout for convolutions on both CPU (oneDNN) and GPU.
    conv = cfg["model"] != "mlp"
    fmt = torch.channels_last if conv else torch.contiguous_format

    with torch.random.fork_rng(devices=[]):  # seeded weights, caller's RNG state untouched
        torch.manual_seed(cfg["seed"])
        model = build_model(cfg["model"], data.n_classes, data.in_channels,
                            image_size=int(data.x_train.shape[-1]), width=cfg["width"],
                            depth=cfg["depth"])
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
    plan = step_plan(cfg, n)
    scheduled = cfg["schedule"] != "constant"
    # The η and B each step really used, read back from the optimizer and the batch.
    trace: dict[str, list] | None = {"lr": [], "batch_size": []} if scheduled else None
    alpha, penalty = cfg["enhance_alpha"], cfg["grad_penalty"]
    params = [p for p in model.parameters() if p.requires_grad]
    eval_idx, test_idx = _evaluation_indices(cfg, data, n, dev)
    evalsets = {
        "train": (x_train[eval_idx], y_train[eval_idx]),
        "test": (data.x_test[test_idx].to(dev), data.y_test[test_idx].to(dev)),
        "shifted_test": (data.x_shift[test_idx].to(dev), data.y_shift[test_idx].to(dev)),
    }
    names = [f"{s}_{m}" for s in evalsets for m in ("loss", "acc")]
    curves: dict[str, list] = {"epoch": [], **{k: [] for k in names}}

    noise_scale: dict[str, list] | None = {} if cfg["noise_scale_every"] else None
    # Scale-invariant weights (conv/linear weights feeding a BatchNorm): their squared norms
    # and the temperature T/|w|² they feel, T = η/B of the step that ended the epoch.
    invariant = None
    if cfg["record_weight_norms"]:
        from sgdtemp.models import scale_invariant_weights

        invariant = scale_invariant_weights(model)
        named = dict(model.named_parameters())
        invariant_params = [named[k] for k in invariant]
        curves.update(weight_sq_norm=[], weight_sq_norm_per_layer=[], effective_temperature=[],
                      effective_temperature_per_layer=[])

    def record(epoch: int) -> None:
        curves["epoch"].append(epoch)
        for s, (xe, ye) in evalsets.items():
            loss, acc = evaluate(model, xe, ye, mean, std, memory_format=fmt, autocast=autocast)
            curves[f"{s}_loss"].append(loss)
            curves[f"{s}_acc"].append(acc)
        if invariant is not None:
            if epoch:  # the last step of the epoch
                b_t, c_t = plan[epoch - 1][-1]
            else:  # the first step to come
                b_t, c_t = plan[0][0] if plan else (bsz, 1.0)
            temperature = cfg["lr"] * c_t / b_t
            with torch.no_grad():
                sq = [float(p.detach().double().pow(2).sum()) for p in invariant_params]
            curves["weight_sq_norm_per_layer"].append(sq)
            curves["weight_sq_norm"].append(sum(sq))
            curves["effective_temperature_per_layer"].append([temperature / v for v in sq])
            curves["effective_temperature"].append(temperature / sum(sq))
        if noise_scale is not None and _noise_scale_due(cfg, epoch):
            _append(noise_scale, epoch, _noise_scale_point(model, cfg, x_train, y_train, mean, std, fmt))

    record(0)
    initial_loss = curves["train_loss"][0]
    threshold = DIVERGENCE_FACTOR * initial_loss
    # Batch order and augmentation draw from their own generators, seeded by the run seed.
    order_gen = torch.Generator().manual_seed(cfg["seed"])
    aug_gen = torch.Generator(device=dev).manual_seed(cfg["seed"] + 1_000_003)

    def batch_loss(idx: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the (augmented) batch ``idx``."""
        xb = x_train[idx]
        if cfg["augment"]:
            xb = random_crop_flip(xb, 4, aug_gen)
        xb = normalise(xb, mean, std).contiguous(memory_format=fmt)
        with autocast():
            return F.cross_entropy(model(xb).float(), y_train[idx])

    # Checking the loss forces a GPU sync: there, look at a window of steps at once.
    check_every = 25 if on_cuda else 1
    diverged_step = None
    train_time, train_images, step = 0.0, 0, 0
    bar = tqdm(total=sum(map(len, plan)), disable=not progress, unit="step",
               desc=f"{cfg['model']} η={cfg['lr']:g} B={bsz}", leave=False)
    model.train()
    for epoch in range(1, cfg["epochs"] + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=order_gen).to(dev)
        pending: list[torch.Tensor] = []
        steps, pos, epoch_images = plan[epoch - 1], 0, 0
        for s, (b_t, c_t) in enumerate(steps):
            idx = perm[pos:pos + b_t]
            pos += b_t
            if scheduled:
                for group in opt.param_groups:
                    group["lr"] = cfg["lr"] * c_t
            loss = batch_loss(idx)
            objective = loss
            if alpha > 0:  # ĝ = (1+α)ĝ₁ − αĝ₂: the gradient of (1+α)L̂₁ − αL̂₂
                idx2 = perm[pos:pos + b_t]
                pos += b_t
                objective = (1 + alpha) * loss - alpha * batch_loss(idx2)
            elif penalty > 0:  # L̂_B + λ‖∇L̂_B‖², by double backward
                g = torch.autograd.grad(loss, params, create_graph=True)
                objective = loss + penalty * sum((gi * gi).sum() for gi in g)
            opt.zero_grad(set_to_none=True)
            objective.backward()
            pending.append(loss.detach())
            if len(pending) == check_every or s == len(steps) - 1:
                losses = torch.stack(pending).float().cpu().numpy()
                bad = np.flatnonzero(~np.isfinite(losses) | (losses > threshold))
                if bad.size:
                    diverged_step = step - len(pending) + 1 + int(bad[0])
                    break
                pending = []
            opt.step()  # after the check, so a diverged step never updates the weights
            if trace is not None:
                trace["lr"].append(opt.param_groups[0]["lr"])
                trace["batch_size"].append(len(idx))
            step += 1
            epoch_images += len(idx) * (2 if alpha > 0 else 1)
            bar.update(1)
        if on_cuda:
            torch.cuda.synchronize()
        train_time += time.perf_counter() - t0
        train_images += epoch_images
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
    if trace is not None:
        result["schedule_trace"] = trace
    if noise_scale is not None:
        result["noise_scale"] = noise_scale
    if invariant is not None:
        result["scale_invariant_weights"] = invariant  # the layers of the per-layer curves
    if diverged_step is None and (cfg["curvature"] or cfg["gradient_noise"]):
        result.update(_end_measurements(model, cfg, x_train, y_train, mean, std, fmt))
    return _plain(result)


def _end_measurements(model, cfg, x_train, y_train, mean, std, fmt) -> dict:
    """Curvature and gradient noise of the final weights on a fixed training subset.

    With ``curvature_batchnorm='train'`` the Hessian is that of the loss the SGD steps
    descend: ⌊curvature_examples/B⌋ fixed batches of the run's B examples, each normalised
    by its own BatchNorm statistics (:func:`sgdtemp.curvature.batch_statistics_model`), and
    the record adds ``lr_times_top_eigenvalue`` (η·λ_max, stable below 2). The gradient
    noise is always measured with the running statistics (per-example gradients)."""
    from sgdtemp import curvature as curv

    n = len(y_train)
    idx = torch.from_numpy(np.random.default_rng(54321).permutation(n)[: cfg["curvature_examples"]])
    idx = idx.to(x_train.device)
    xs = normalise(x_train[idx], mean, std).contiguous(memory_format=fmt)
    ys = y_train[idx]
    batches = [(xs[i:i + 256], ys[i:i + 256]) for i in range(0, len(ys), 256)]
    out: dict[str, Any] = {}
    if cfg["curvature"]:
        train_mode = cfg["curvature_batchnorm"] == "train"
        net = curv.batch_statistics_model(model) if train_mode else model
        if train_mode:  # whole batches of the run's B, as a training step sees them
            B = cfg["batch_size"]
            c_batches = [(xs[i:i + B], ys[i:i + B]) for i in range(0, len(ys) - B + 1, B)]
        else:
            c_batches = batches
        tr, se = curv.hutchinson_trace(net, F.cross_entropy, c_batches,
                                       n_probes=cfg["curvature_probes"], seed=cfg["seed"])
        top = curv.top_eigenvalue(net, F.cross_entropy, c_batches,
                                  n_iter=cfg["curvature_iters"], seed=cfg["seed"])
        out["curvature"] = {"hessian_trace": tr, "hessian_trace_stderr": se, "top_eigenvalue": top,
                            "n_examples": sum(len(y) for _, y in c_batches)}
        if train_mode:
            out["curvature"].update(batchnorm="train", batch_size=cfg["batch_size"],
                                    lr_times_top_eigenvalue=cfg["lr"] * top)
        if cfg["curvature_frobenius"]:
            fro, fro_se = curv.hessian_frobenius_norm(net, F.cross_entropy, c_batches,
                                                      n_probes=cfg["curvature_probes"],
                                                      seed=cfg["seed"])
            out["curvature"].update(hessian_frobenius=fro, hessian_frobenius_stderr=fro_se)
    if cfg["gradient_noise"]:
        out["noise"] = {"grad_cov_trace": curv.gradient_noise_trace(model, F.cross_entropy, batches),
                        "n_examples": len(ys)}
    return out


def _noise_scale_due(cfg: dict, epoch: int) -> bool:
    """Whether the gradient noise scale is measured after ``epoch`` (every
    ``noise_scale_every`` epochs from 0, and at the last)."""
    every = cfg["noise_scale_every"]
    return bool(every) and (epoch % every == 0 or epoch == cfg["epochs"])


def _noise_scale_point(model, cfg, x_train, y_train, mean, std, fmt) -> dict:
    """B_simple = tr Σ/|G|² (:func:`sgdtemp.curvature.gradient_noise_scale`) of the current
    weights on the fixed subset of ``curvature_examples`` training examples that the end
    measurements use (so it is the same sample at every checkpoint)."""
    from sgdtemp import curvature as curv

    idx = torch.from_numpy(np.random.default_rng(54321).permutation(len(y_train))[: cfg["curvature_examples"]])
    idx = idx.to(x_train.device)
    xs = normalise(x_train[idx], mean, std).contiguous(memory_format=fmt)
    ys = y_train[idx]
    batches = [(xs[i:i + 256], ys[i:i + 256]) for i in range(0, len(ys), 256)]
    return curv.gradient_noise_scale(model, F.cross_entropy, batches)


def _append(series: dict[str, list], epoch: int, point: dict) -> None:
    """Add one checkpoint (``epoch`` and every entry of ``point``) to a dict of lists."""
    series.setdefault("epoch", []).append(epoch)
    for k, v in point.items():
        series.setdefault(k, []).append(v)


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


# ---------------------------------------------------------------- many runs at once
def group_key(config: dict) -> tuple:
    """What runs must share to train in one vectorized group: every option outside
    :data:`PER_RUN_KEYS` (model, width, depth, data, batch size, epochs, schedule, ...)."""
    shared = sorted((k, repr(v)) for k, v in config.items() if k not in PER_RUN_KEYS)
    # Noise enhancement takes two batches a step: runs with and without it cannot share steps.
    # The explicit regularizer needs a double backward, several times the cost of a plain
    # step: runs without it are kept out of its groups, where they would pay for it.
    return tuple(shared) + (("two_batches", config["enhance_alpha"] > 0),
                            ("double_backward", config["grad_penalty"] > 0))


def vectorizable(config: dict) -> bool:
    """Whether this run can share a vectorized step: models without BatchNorm (the mlp).

    BatchNorm models (small_cnn, resnet) run one at a time: their running statistics are
    updated in place inside the forward pass, which a vmap over stacked runs would have to
    replicate exactly, buffer by buffer, to keep each run's numbers; we do not risk it.
    """
    from sgdtemp.models import STATELESS_MODELS

    return config["model"] in STATELESS_MODELS


def plan_groups(configs: list[dict], max_group: int = 16) -> list[list[int]]:
    """Indices of ``configs`` cut into units of work: vectorizable runs with equal
    :func:`group_key`, at most ``max_group`` a unit, in order of first appearance; every
    other run alone."""
    by_key: dict[tuple, list[int]] = {}
    units: list[list[int]] = []
    for i, c in enumerate(configs):
        if not vectorizable(c):
            units.append([i])
            continue
        by_key.setdefault(group_key(c), []).append(i)
    for members in by_key.values():
        units += [members[j:j + max_group] for j in range(0, len(members), max_group)]
    return sorted(units, key=lambda u: u[0])


def run_trainings(configs: list[dict], *, progress: bool = True, max_group: int = 16,
                  data: Dataset | None = None) -> list[dict]:
    """The records of ``[run_training(c) for c in configs]``, in the same order, training
    runs that share everything but their numbers together.

    Runs of a stateless model (the mlp) with equal :func:`group_key` (same model, width,
    depth, data set and subset, batch size or batch schedule, epochs) form a group of at
    most ``max_group``. A group stacks its runs' parameters (``torch.func.stack_module_state``)
    and takes every SGD step for all of them at once with ``vmap(grad(...))``; each run keeps
    its own initial weights (its seed), its own batch order and augmentation generators, its
    own labels (label noise) and its own η, momentum and weight decay, so its record equals
    the one-at-a-time record up to float rounding (batched matrix products sum in another
    order). A run whose loss diverges is recorded as diverged at that step and leaves the
    group; the others go on unchanged. Other runs (BatchNorm models) train one at a time.
    ``data`` may pass a Dataset already loaded for runs without label noise.
    """
    cfgs = [training_config(**c) for c in configs]
    records: list[dict | None] = [None] * len(cfgs)
    for unit in plan_groups(cfgs, max_group):
        if len(unit) == 1:
            records[unit[0]] = run_training(cfgs[unit[0]], progress=progress, data=data)
            continue
        dev = _device(cfgs[unit[0]]["device"])
        with _deterministic(dev.type == "cpu"):
            for i, rec in zip(unit, _run_group([cfgs[i] for i in unit], dev, progress, data)):
                records[i] = rec
    return records  # type: ignore[return-value]


def _group_data(cfgs: list[dict], data: Dataset | None) -> tuple[Dataset, list[torch.Tensor]]:
    """The group's shared images and each run's training labels (label noise is per run)."""
    first = cfgs[0]
    by_noise: dict[float, Dataset] = {}
    for c in cfgs:
        if c["label_noise"] not in by_noise:
            if data is not None and c["label_noise"] == data.label_noise:
                by_noise[c["label_noise"]] = data
            else:
                by_noise[c["label_noise"]] = load_dataset(
                    first["dataset"], first["data_dir"], n_train=first["n_train"],
                    seed=first["data_seed"], label_noise=c["label_noise"])
    base = by_noise[cfgs[0]["label_noise"]]
    return base, [by_noise[c["label_noise"]].y_train for c in cfgs]


def _run_group(cfgs: list[dict], dev: torch.device, progress: bool,
               data: Dataset | None) -> list[dict]:
    from torch.func import functional_call, grad, stack_module_state, vmap
    from tqdm import tqdm

    first, R = cfgs[0], len(cfgs)
    data, labels = _group_data(cfgs, data)
    models = []
    for c in cfgs:
        with torch.random.fork_rng(devices=[]):  # the same initial weights as run_training
            torch.manual_seed(c["seed"])
            models.append(build_model(c["model"], data.n_classes, data.in_channels,
                                      image_size=int(data.x_train.shape[-1]), width=c["width"],
                                      depth=c["depth"]).to(dev))
    params, _ = stack_module_state(models)
    params = {k: v.detach().clone() for k, v in params.items()}
    names = list(params)
    base = models[0]
    n_params = sum(p.numel() for p in base.parameters())

    def loss_of(p: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(base, p, (x,)).float(), y)

    use_two = first["enhance_alpha"] > 0  # the same for the whole group (group_key)
    use_pen = any(c["grad_penalty"] > 0 for c in cfgs)

    def objective(p: dict, x, y, x2, y2, lam, alpha):
        """The function whose gradient is the step, and the plain batch loss (for records)."""
        ce = loss_of(p, x, y)
        if use_two:  # ĝ = (1+α)ĝ₁ − αĝ₂
            return (1 + alpha) * ce - alpha * loss_of(p, x2, y2), ce
        if use_pen:  # L̂_B + λ‖∇L̂_B‖² (λ = 0 for runs without the regularizer)
            g = grad(loss_of)(p, x, y)
            return ce + lam * sum((v * v).sum() for v in g.values()), ce
        return ce, ce

    step_fn = vmap(grad(objective, has_aux=True))
    logits_fn = vmap(lambda p, x: functional_call(base, p, (x,)), in_dims=(0, None))

    mean = torch.tensor(data.mean, device=dev).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=dev).view(1, -1, 1, 1)
    x_train = data.x_train.to(dev)
    y_train = torch.stack(labels).to(dev)  # (R, n)
    n = x_train.shape[0]
    plan = step_plan(first, n)
    scheduled = first["schedule"] != "constant"

    eval_idx, test_idx = _evaluation_indices(first, data, n, dev)
    # Images shared by all runs; labels per run for the training subset.
    evalsets = {
        "train": (x_train[eval_idx], y_train[:, eval_idx]),
        "test": (data.x_test[test_idx].to(dev), data.y_test[test_idx].to(dev).expand(R, -1)),
        "shifted_test": (data.x_shift[test_idx].to(dev), data.y_shift[test_idx].to(dev).expand(R, -1)),
    }
    metric_names = [f"{s}_{m}" for s in evalsets for m in ("loss", "acc")]
    curves = [{"epoch": [], **{k: [] for k in metric_names}} for _ in range(R)]
    noise_scales = [{} for _ in range(R)] if first["noise_scale_every"] else None

    @torch.no_grad()
    def record(epoch: int, runs: list[int], p: dict) -> None:
        for s, (xe, ye) in evalsets.items():
            loss_sum = torch.zeros(len(runs), dtype=torch.float64, device=dev)
            correct = torch.zeros(len(runs), dtype=torch.int64, device=dev)
            for i in range(0, xe.shape[0], EVAL_BATCH):
                out = logits_fn(p, normalise(xe[i:i + EVAL_BATCH], mean, std)).float()
                yb = ye[runs][:, i:i + EVAL_BATCH]
                ce = F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none")
                loss_sum += ce.view(len(runs), -1).sum(1).double()
                correct += (out.argmax(-1) == yb).sum(1)
            for j, r in enumerate(runs):
                curves[r][f"{s}_loss"].append(float(loss_sum[j]) / xe.shape[0])
                curves[r][f"{s}_acc"].append(int(correct[j]) / xe.shape[0])
        for r in runs:
            curves[r]["epoch"].append(epoch)
        if noise_scales is not None and _noise_scale_due(first, epoch):
            for j, r in enumerate(runs):
                for k, v in models[r].named_parameters():
                    v.copy_(p[k][j])
                _append(noise_scales[r], epoch, _noise_scale_point(
                    models[r], cfgs[r], x_train, y_train[r], mean, std, torch.contiguous_format))

    active = list(range(R))
    record(0, active, params)
    thresholds = torch.tensor([DIVERGENCE_FACTOR * curves[r]["train_loss"][0] for r in range(R)])
    order_gens = [torch.Generator().manual_seed(c["seed"]) for c in cfgs]
    aug_gens = [torch.Generator(device=dev).manual_seed(c["seed"] + 1_000_003) for c in cfgs]
    lr = torch.tensor([c["lr"] for c in cfgs], device=dev)
    lam = torch.tensor([c["grad_penalty"] for c in cfgs], device=dev)
    alpha = torch.tensor([c["enhance_alpha"] for c in cfgs], device=dev)
    mom = torch.tensor([c["momentum"] for c in cfgs], device=dev)
    wd = torch.tensor([c["weight_decay"] for c in cfgs], device=dev)
    use_mom, use_wd = bool((mom > 0).any()), bool((wd > 0).any())
    bufs = {k: torch.zeros_like(v) for k, v in params.items()} if use_mom else None
    diverged_step: list[int | None] = [None] * R
    steps_done, images = [0] * R, [0] * R
    traces = [{"lr": [], "batch_size": []} for _ in range(R)] if scheduled else None
    train_time, step = 0.0, 0

    def batch(idx: torch.Tensor, runs: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The runs' (augmented, normalised) images and labels at ``idx`` (R_active, b)."""
        if first["augment"]:
            xb = torch.stack([random_crop_flip(x_train[idx[j]], 4, aug_gens[r])
                              for j, r in enumerate(runs)])
        else:
            xb = x_train[idx]
        xb = normalise(xb.flatten(0, 1), mean, std).view(*idx.shape, *x_train.shape[1:])
        return xb, torch.gather(y_train[runs], 1, idx)

    def shape(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return v.view(-1, *([1] * (like.dim() - 1)))

    bar = tqdm(total=sum(map(len, plan)), disable=not progress, unit="step", leave=False,
               desc=f"{R} × {first['model']} B={first['batch_size']}")
    for epoch in range(1, first["epochs"] + 1):
        t0 = time.perf_counter()
        perms = torch.stack([torch.randperm(n, generator=order_gens[r]) for r in active]).to(dev)
        pos = 0
        for b_t, c_t in plan[epoch - 1]:
            idx = perms[:, pos:pos + b_t]  # (R_active, b_t)
            pos += b_t
            xb, yb = batch(idx, active)
            if use_two:
                idx2 = perms[:, pos:pos + b_t]
                pos += b_t
                xb2, yb2 = batch(idx2, active)
            else:
                xb2, yb2 = xb, yb  # unused
            grads, losses = step_fn(params, xb, yb, xb2, yb2, lam, alpha)
            losses = losses.detach().cpu()
            bad = ~torch.isfinite(losses) | (losses > thresholds[active])
            if bool(bad.any()):  # these runs stop here, before their update, like run_training
                keep = (~bad).nonzero().flatten().tolist()
                for j in bad.nonzero().flatten().tolist():
                    diverged_step[active[j]] = steps_done[active[j]]
                active = [active[j] for j in keep]
                k_idx = torch.tensor(keep, dtype=torch.long, device=dev)
                params = {k: v[k_idx] for k, v in params.items()}
                grads = {k: v[k_idx] for k, v in grads.items()}
                lr, mom, wd = lr[k_idx], mom[k_idx], wd[k_idx]
                lam, alpha = lam[k_idx], alpha[k_idx]
                perms = perms[k_idx]
                if bufs is not None:
                    bufs = {k: v[k_idx] for k, v in bufs.items()}
                if not active:
                    break
            lr_t = lr * c_t if scheduled else lr
            with torch.no_grad():
                for k in names:  # torch.optim.SGD's update, one row per run
                    g = grads[k]
                    if use_wd:
                        g = g + shape(wd, g) * params[k]
                    if bufs is not None:
                        bufs[k] = shape(mom, g) * bufs[k] + g
                        g = bufs[k]
                    params[k] = params[k] - shape(lr_t, g) * g
            for j, r in enumerate(active):
                steps_done[r] += 1
                images[r] += b_t * (2 if use_two else 1)
                if traces is not None:
                    traces[r]["lr"].append(float(cfgs[r]["lr"] * c_t))
                    traces[r]["batch_size"].append(int(idx.shape[1]))
            step += 1
            bar.update(1)
        train_time += time.perf_counter() - t0
        if not active:
            break
        record(epoch, active, params)
        bar.set_postfix(runs=len(active))
    bar.close()

    # Back to one module per run, for the end measurements and the records.
    final_rows = {r: j for j, r in enumerate(active)}
    out = []
    for r, c in enumerate(cfgs):
        rec: dict[str, Any] = {
            "config": c,
            "curves": curves[r],
            "final": {k: curves[r][k][-1] for k in metric_names},
            "diverged": diverged_step[r] is not None,
            "diverged_step": diverged_step[r],
            "curvature": None,
            "noise": None,
            "images_per_second": images[r] / train_time if train_time > 0 else None,
            "steps": steps_done[r],
            "n_parameters": n_params,
            "device": _device_name(dev),
        }
        if traces is not None:
            rec["schedule_trace"] = traces[r]
        if noise_scales is not None:
            rec["noise_scale"] = noise_scales[r]
        if r in final_rows and (c["curvature"] or c["gradient_noise"]):
            model = models[r]
            with torch.no_grad():
                for k, p in model.named_parameters():
                    p.copy_(params[k][final_rows[r]])
            rec.update(_end_measurements(model, c, x_train, y_train[r], mean, std,
                                         torch.contiguous_format))
        out.append(_plain(rec))
    return out
