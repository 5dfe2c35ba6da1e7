"""What a training run is: its configuration, its step plan, and which runs can train together.

``CONFIG_KEYS`` lists every option of a run with its default, its check and its meaning;
:func:`training_config` completes and validates one (every config that reaches the engine
or the results store passes through it). :func:`step_plan` says, before any compute, the
batch size and learning-rate factor of every step of a run: the learning-rate and
batch-size schedules live here, so that a chapter can read a run's temperature T_t = η_t/B_t
without training it. :func:`group_key`, :func:`vectorizable` and :func:`plan_groups` cut a
list of runs into units of work that share one vectorized step (``sgdtemp.train``).
Every name is also importable from ``sgdtemp.train``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sgdtemp.data import DATASETS
from sgdtemp.models import MODELS, STATELESS_MODELS
from sgdtemp.params import (
    ParameterError, in_range, non_negative, non_negative_int, one_of, optional, positive,
    positive_int,
)

# Full training-set sizes, to validate n_train and batch_size before loading any data.
TRAIN_SIZES = {"cifar10": 50_000, "fashion_mnist": 60_000}
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
                            "the effective temperature T/|w|² (models with BatchNorm only)"),
    # a float only: an int 1 would key the same run apart from the default 1.0
    "shift_strength": (1.0, lambda v: None if isinstance(v, float) and 0.0 <= v <= 1.0
                       else "a float between 0.0 and 1.0",
                       "strength s of the test set's domain shift (sgdtemp.data.domain_shifted): "
                       "contrast 1 − s/2, s × a 3×3 blur, Gaussian noise of std 0.08·s; 1.0 is "
                       "the original shift, 0.0 none"),
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
    if cfg["record_weight_norms"] and cfg["model"] in STATELESS_MODELS:
        raise ParameterError(f"record_weight_norms must be False for model {cfg['model']!r}: it has "
                             "no BatchNorm, so no scale-invariant weights.")
    if cfg["augment"] is None:
        cfg["augment"] = cfg["dataset"] == "cifar10"
    return cfg


# ---------------------------------------------------------------- the step plan
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


# ---------------------------------------------------------------- runs that train together
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
