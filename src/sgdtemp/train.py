"""Training networks with plain SGD at an exactly known learning rate and batch size.

The loop follows airbench's shape, without its tricks: the images sit on the device
as uint8 tensors, each epoch draws one seeded permutation and cuts it into
``N // B`` batches of exactly ``B`` examples (the last partial batch is dropped, so
every step has the same temperature T = η/B), augmentation (random 4-pixel-padded
crop and horizontal flip) is done on the whole batch with tensor ops, and the update
is ``torch.optim.SGD`` with momentum and weight decay 0 unless asked otherwise.

:func:`run_training` takes one configuration (see :func:`sgdtemp.training_config.training_config`) and returns
a JSON-serialisable record of curves and final metrics; the results store adds
provenance and caches it. :func:`run_trainings` trains a list of runs, those that share
everything but their numbers (:func:`sgdtemp.training_config.plan_groups`) together in one vectorized step.

**One loop, two step engines.** Every run goes through one loop, ``_Loop``: it builds
the seeded networks, the evaluation subsets, the step plan and every batch (order,
augmentation, the second batch of noise enhancement), applies the divergence rule,
traces the schedule, evaluates and writes the records. Only the step differs:

* :class:`ModuleStep`: one ``nn.Module`` and ``torch.optim.SGD`` (any model; BatchNorm
  updates its running statistics in the forward pass, as in any PyTorch loop);
* :class:`StackedStep`: R runs of a stateless model (the mlp) with their parameters
  stacked, one ``vmap(grad(...))`` for all of them and ``torch.optim.SGD``'s update
  written out row by row (each run its own η, momentum, weight decay, λ, α).

Rules the two engines share:

* **Precision**: float32 on the CPU. On CUDA, bf16 autocast for every forward pass, in
  training and in evaluation (losses are taken in float32), in both engines, so a GPU
  record does not depend on whether its run trained alone or in a group beyond rounding.
* **Divergence**: every step's batch loss is checked before its update, so a diverged
  step never updates the weights; on CUDA this reads the loss back every step (one
  synchronisation a step, the price of the rule).
* **Records** (keys documented in :func:`run_training`) mean the same in both;
  ``images_per_second`` is the run's own training images per second of the training
  wall time of its unit of work (see :func:`run_training`).

The configuration, its checks and the step plan are in :mod:`sgdtemp.training_config`;
their names are importable from here too.
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
from typing import Any, Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from sgdtemp.data import Dataset, load_dataset, stratified_subset
from sgdtemp.models import build_model
from sgdtemp.params import ParameterError
from sgdtemp.training_config import (  # noqa: F401  (re-exported: public names of sgdtemp.train)
    CONFIG_KEYS, CURVATURE_BATCHNORM, PER_RUN_KEYS, SCHEDULES, TRAIN_SIZES, epochs_elapsed,
    group_key, plan_groups, step_plan, temperature_factor, training_config, vectorizable,
)

DIVERGENCE_FACTOR = 1e3  # a loss above 1000 × the initial loss counts as divergence
EVAL_BATCH = 1000
CROP_PAD = 4  # pixels of padding of the random crop


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


def _autocast(dev: torch.device) -> Callable[[], Any]:
    """The precision policy of both engines: bf16 autocast on CUDA (the forward passes of
    training and evaluation; losses are computed in float32), none on the CPU, where bf16
    is slower and would change the numbers."""
    if dev.type == "cuda":
        return lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext


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


# ---------------------------------------------------------------- the runs
def run_training(config: dict, *, progress: bool = True, data: Dataset | None = None) -> dict:
    """Train one network with SGD and return its record (JSON-serialisable).

    ``config`` is completed and validated by :func:`sgdtemp.training_config.training_config`. ``data`` may pass a
    :class:`.Dataset` already loaded for this config (to skip loading in a sweep); it is
    used when its label noise and shift strength are the run's, else the data are loaded.

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
    above 1000 × the initial training loss; training stops there, before that step's
    update); ``curvature`` (``hessian_trace``, ``hessian_trace_stderr``, ``top_eigenvalue``
    of the training loss on ``curvature_examples`` examples) or None; ``noise``
    (``grad_cov_trace`` = tr Σ) or None; ``images_per_second``: the training images this
    run used (two batches a step with noise enhancement) per second of the wall time of the
    training steps (evaluation and end measurements excluded) of the unit of work that
    trained it — the run alone, or the group of R runs of :func:`run_trainings`, whose
    throughput is the sum over its runs; ``steps`` (updates made); ``n_parameters``;
    ``device``. A sweep's provenance adds the unit's ``cpu_time_s`` and its ``group_size``:
    a run's own CPU time is ``cpu_time_s / group_size`` (``sgdtemp.records.cpu_hours``).
    """
    return _train([training_config(**config)], ModuleStep, progress, data)[0]


def run_trainings(configs: list[dict], *, progress: bool = True, max_group: int = 16,
                  data: Dataset | None = None) -> list[dict]:
    """The records of ``[run_training(c) for c in configs]``, in the same order, training
    runs that share everything but their numbers together.

    Runs of a stateless model (the mlp) with equal :func:`sgdtemp.training_config.group_key` (same model, width,
    depth, data set and subset, batch size or batch schedule, epochs) form a group of at
    most ``max_group``, trained by :class:`StackedStep`: each run keeps its own initial
    weights (its seed), its own batch order and augmentation generators, its own labels
    (label noise) and its own η, momentum and weight decay, so its record equals the
    one-at-a-time record up to float rounding (batched matrix products sum in another
    order). A run whose loss diverges is recorded as diverged at that step and leaves the
    group; the others go on unchanged. Other runs (BatchNorm models, or a group of one)
    train one at a time. ``data`` may pass a Dataset already loaded (see
    :func:`run_training`).
    """
    cfgs = [training_config(**c) for c in configs]
    records: list[dict | None] = [None] * len(cfgs)
    for unit in plan_groups(cfgs, max_group):
        engine = ModuleStep if len(unit) == 1 else StackedStep
        for i, rec in zip(unit, _train([cfgs[i] for i in unit], engine, progress, data)):
            records[i] = rec
    return records  # type: ignore[return-value]


def _train(cfgs: list[dict], engine: type, progress: bool, data: Dataset | None) -> list[dict]:
    """The records of one unit of work (one run, or a group) trained by ``engine``."""
    dev = _device(cfgs[0]["device"])
    with _deterministic(dev.type == "cpu"):
        loop = _Loop(cfgs, dev, engine, data)
        loop.train(progress)
        return loop.records()


def _unit_data(cfgs: list[dict], data: Dataset | None) -> tuple[Dataset, list[torch.Tensor]]:
    """The unit's images (shared by its runs) and each run's training labels (label noise
    is per run): ``data`` where its label noise and shift strength are the run's, else
    loaded."""
    first = cfgs[0]
    by_noise: dict[float, Dataset] = {}
    for c in cfgs:
        noise = c["label_noise"]
        if noise in by_noise:
            continue
        if (data is not None and data.label_noise == noise
                and data.shift_strength == first["shift_strength"]):
            by_noise[noise] = data
        else:
            by_noise[noise] = load_dataset(first["dataset"], first["data_dir"], n_train=first["n_train"],
                                           seed=first["data_seed"], label_noise=noise,
                                           shift_strength=first["shift_strength"])
    return by_noise[first["label_noise"]], [by_noise[c["label_noise"]].y_train for c in cfgs]


def _seeded_model(cfg: dict, data: Dataset, dev: torch.device, fmt) -> torch.nn.Module:
    """The run's network with its seeded initial weights; the caller's RNG state untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg["seed"])
        model = build_model(cfg["model"], data.n_classes, data.in_channels,
                            image_size=int(data.x_train.shape[-1]), width=cfg["width"],
                            depth=cfg["depth"])
    return model.to(dev, memory_format=fmt)


# ---------------------------------------------------------------- the loop
class _Loop:
    """One unit of work (a run, or a group of runs sharing every option outside
    :data:`PER_RUN_KEYS`) from set-up to records, around a step engine.

    While run ``r`` trains it is row ``j`` of the engine, ``self.active[j] == r``; a run
    that diverges leaves ``active`` (and the engine) before its update.
    """

    def __init__(self, cfgs: list[dict], dev: torch.device, engine: type, data: Dataset | None):
        self.cfgs, self.first, self.dev = cfgs, cfgs[0], dev
        data, labels = _unit_data(cfgs, data)
        # channels_last is the fast layout for convolutions on both CPU (oneDNN) and GPU.
        self.fmt = torch.channels_last if self.first["model"] != "mlp" else torch.contiguous_format
        models = [_seeded_model(c, data, dev, self.fmt) for c in cfgs]
        self.n_params = sum(p.numel() for p in models[0].parameters())
        self.mean = torch.tensor(data.mean, device=dev).view(1, -1, 1, 1)
        self.std = torch.tensor(data.std, device=dev).view(1, -1, 1, 1)
        self.x_train = data.x_train.to(dev)
        self.y_train = torch.stack(labels).to(dev)  # (R, n): label noise is per run
        self.n, bsz = self.x_train.shape[0], self.first["batch_size"]
        if bsz > self.n:
            raise ParameterError(f"batch_size must be between 1 and n_train = {self.n}; got {bsz!r}.")
        self.plan = step_plan(self.first, self.n)
        self.evalsets = _evaluation_sets(self.first, data, self.x_train, self.y_train)
        self.metrics = [f"{s}_{m}" for s in self.evalsets for m in ("loss", "acc")]
        self.curves = [{"epoch": [], **{k: [] for k in self.metrics}} for _ in cfgs]
        self.noise_scales = [{} for _ in cfgs] if self.first["noise_scale_every"] else None
        # The η and B each step really used, read back from the engine and the batch.
        self.traces = ([{"lr": [], "batch_size": []} for _ in cfgs]
                       if self.first["schedule"] != "constant" else None)
        # Scale-invariant weights (conv/linear weights feeding a BatchNorm): their squared
        # norms and the temperature T/|w|² they feel, T = η/B of the step that ended the epoch.
        self.invariant = None
        if self.first["record_weight_norms"]:
            from sgdtemp.models import scale_invariant_weights

            self.invariant = scale_invariant_weights(models[0])
            for c in self.curves:
                c.update(weight_sq_norm=[], weight_sq_norm_per_layer=[], effective_temperature=[],
                         effective_temperature_per_layer=[])
        self.engine = engine(models, cfgs, _autocast(dev), self.fmt, self.mean, self.std)
        self.active = list(range(len(cfgs)))
        self.y_active = self.y_train  # the active runs' labels, row by row
        self.diverged_step: list[int | None] = [None] * len(cfgs)
        self.steps, self.images = [0] * len(cfgs), [0] * len(cfgs)
        self.train_time = 0.0

    # ---- evaluation and the per-epoch records
    def record(self, epoch: int) -> None:
        """Evaluate the active runs after ``epoch`` epochs and append to their curves."""
        runs = self.active
        for r in runs:
            self.curves[r]["epoch"].append(epoch)
        for s, (xe, ye) in self.evalsets.items():
            for r, (loss, acc) in zip(runs, self.engine.evaluate(xe, ye[runs])):
                self.curves[r][f"{s}_loss"].append(loss)
                self.curves[r][f"{s}_acc"].append(acc)
        if self.invariant is not None:
            for j, r in enumerate(runs):
                self._record_weight_norms(epoch, self.curves[r], self.engine.module(j), self.cfgs[r])
        if self.noise_scales is not None and _noise_scale_due(self.first, epoch):
            for j, r in enumerate(runs):
                _append(self.noise_scales[r], epoch, _noise_scale_point(
                    self.engine.module(j), self.cfgs[r], self.x_train, self.y_train[r],
                    self.mean, self.std, self.fmt))

    def _record_weight_norms(self, epoch: int, curves: dict, model: torch.nn.Module,
                             cfg: dict) -> None:
        if epoch:  # the last step of the epoch
            b_t, c_t = self.plan[epoch - 1][-1]
        else:  # the first step to come
            b_t, c_t = self.plan[0][0] if self.plan else (cfg["batch_size"], 1.0)
        temperature = cfg["lr"] * c_t / b_t
        named = dict(model.named_parameters())
        with torch.no_grad():
            sq = [float(named[k].detach().double().pow(2).sum()) for k in self.invariant]
        curves["weight_sq_norm_per_layer"].append(sq)
        curves["weight_sq_norm"].append(sum(sq))
        curves["effective_temperature_per_layer"].append([temperature / v for v in sq])
        curves["effective_temperature"].append(temperature / sum(sq))

    # ---- training
    def train(self, progress: bool) -> None:
        from tqdm import tqdm

        self.record(0)
        first, R = self.first, len(self.cfgs)
        # float32 thresholds (compared with float32 losses), as python floats per run
        self.thresholds = torch.tensor([DIVERGENCE_FACTOR * c["train_loss"][0]
                                        for c in self.curves]).tolist()
        # Batch order and augmentation draw from their own generators, seeded by the run seed.
        self.order_gens = [torch.Generator().manual_seed(c["seed"]) for c in self.cfgs]
        self.aug_gens = [torch.Generator(device=self.dev).manual_seed(c["seed"] + 1_000_003)
                         for c in self.cfgs]
        desc = (f"{first['model']} η={first['lr']:g} B={first['batch_size']}" if R == 1
                else f"{R} × {first['model']} B={first['batch_size']}")
        bar = tqdm(total=sum(map(len, self.plan)), disable=not progress, unit="step", leave=False,
                   desc=desc)
        for epoch in range(1, first["epochs"] + 1):
            t0 = time.perf_counter()
            self._epoch(self.plan[epoch - 1], bar)
            if self.dev.type == "cuda":
                torch.cuda.synchronize()
            self.train_time += time.perf_counter() - t0
            if not self.active:
                break
            self.record(epoch)
            if R == 1:
                bar.set_postfix(train_loss=f"{self.curves[0]['train_loss'][-1]:.3f}",
                                test_acc=f"{self.curves[0]['test_acc'][-1]:.3f}")
            else:
                bar.set_postfix(runs=len(self.active))
        bar.close()

    def _epoch(self, steps: list[tuple[int, float]], bar) -> None:
        """One epoch's steps ``(B_t, c_t)`` for the active runs; each run's permutation of
        the training set is cut into consecutive batches (two a step with noise
        enhancement)."""
        two = self.first["enhance_alpha"] > 0
        perms = torch.stack([torch.randperm(self.n, generator=self.order_gens[r])
                             for r in self.active]).to(self.dev)
        pos = 0
        for b_t, c_t in steps:
            idx = perms[:, pos:pos + b_t]  # (R_active, b_t)
            pos += b_t
            xb, yb = self._batch(idx)
            second = None
            if two:  # noise enhancement: a second, disjoint batch of B
                second = self._batch(perms[:, pos:pos + b_t])
                pos += b_t
            losses = self.engine.gradients(xb, yb, second, c_t)
            keep = self._divergence_check(losses)
            if keep is not None:
                if not self.active:
                    return
                perms = perms[torch.tensor(keep, dtype=torch.long, device=self.dev)]
            self.engine.update(c_t)
            for j, r in enumerate(self.active):
                self.steps[r] += 1
                self.images[r] += b_t * (2 if two else 1)
                if self.traces is not None:
                    self.traces[r]["lr"].append(self.engine.lr_used(j, c_t))
                    self.traces[r]["batch_size"].append(int(idx.shape[1]))
            bar.update(1)

    def _divergence_check(self, losses: list[float]) -> list[int] | None:
        """The divergence rule, before the update: runs whose batch loss is non-finite or
        above 1000 × their initial training loss stop at this step. Returns the rows that
        go on when some stopped (None when none did), with the runs removed from
        ``active`` and from the engine."""
        runs = self.active
        bad = [j for j, (v, r) in enumerate(zip(losses, runs))
               if not (math.isfinite(v) and v <= self.thresholds[r])]
        if not bad:
            return None
        keep = [j for j in range(len(runs)) if j not in bad]
        for j in bad:
            self.diverged_step[runs[j]] = self.steps[runs[j]]
        self.active = [runs[j] for j in keep]
        if self.active:
            self.engine.keep(keep)
            self.y_active = self.y_train[self.active]
        return keep

    def _batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The active runs' images (augmented with each run's generator, normalised),
        (R_active, b, C, H, W) float32, and labels (R_active, b) at ``idx`` (R_active, b)."""
        x = self.x_train
        if self.first["augment"]:
            crops = [random_crop_flip(x[idx[j]], CROP_PAD, self.aug_gens[r])
                     for j, r in enumerate(self.active)]
            xb = crops[0].unsqueeze(0) if len(crops) == 1 else torch.stack(crops)
        else:
            xb = x[idx]
        xb = normalise(xb.flatten(0, 1), self.mean, self.std).view(*idx.shape, *x.shape[1:])
        return xb, torch.gather(self.y_active, 1, idx)

    # ---- the records
    def records(self) -> list[dict]:
        """One record per run (see :func:`run_training`), with the end measurements of the
        runs that did not diverge."""
        row_of = {r: j for j, r in enumerate(self.active)}
        out = []
        for r, c in enumerate(self.cfgs):
            curves = self.curves[r]
            rec: dict[str, Any] = {
                "config": c,
                "curves": curves,
                "final": {k: curves[k][-1] for k in self.metrics},
                "diverged": self.diverged_step[r] is not None,
                "diverged_step": self.diverged_step[r],
                "curvature": None,
                "noise": None,
                "images_per_second": self.images[r] / self.train_time if self.train_time > 0 else None,
                "steps": self.steps[r],
                "n_parameters": self.n_params,
                "device": _device_name(self.dev),
            }
            if self.traces is not None:
                rec["schedule_trace"] = self.traces[r]
            if self.noise_scales is not None:
                rec["noise_scale"] = self.noise_scales[r]
            if self.invariant is not None:
                rec["scale_invariant_weights"] = self.invariant  # the layers of the per-layer curves
            if r in row_of and (c["curvature"] or c["gradient_noise"]):
                rec.update(_end_measurements(self.engine.module(row_of[r]), c, self.x_train,
                                             self.y_train[r], self.mean, self.std, self.fmt))
            out.append(_plain(rec))
        return out


def _evaluation_sets(cfg: dict, data: Dataset, x_train: torch.Tensor,
                     y_train: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name → (uint8 images, labels (R, k)) of the fixed evaluation subsets: images shared
    by the unit's runs, training labels per run (label noise)."""
    dev, R = x_train.device, y_train.shape[0]
    eval_idx, test_idx = _evaluation_indices(cfg, data, x_train.shape[0], dev)
    return {
        "train": (x_train[eval_idx], y_train[:, eval_idx]),
        "test": (data.x_test[test_idx].to(dev), data.y_test[test_idx].to(dev).expand(R, -1)),
        "shifted_test": (data.x_shift[test_idx].to(dev), data.y_shift[test_idx].to(dev).expand(R, -1)),
    }


# ---------------------------------------------------------------- the step engines
class ModuleStep:
    """The step of one run: its ``nn.Module`` and ``torch.optim.SGD`` (any model).

    Engine interface (shared with :class:`StackedStep`; rows are the active runs):
    ``gradients(xb, yb, second, c_t)`` computes the step's gradients and returns the float32
    batch losses, one python float per row (read back to the CPU: the divergence rule
    needs them before the update); ``update(c_t)`` applies the step;
    ``keep(rows)`` drops the other rows; ``lr_used(j, c_t)`` is row j's η_t;
    ``evaluate(x, y)`` gives (mean loss, accuracy) per row; ``module(j)`` is row j's
    network with its current weights.
    """

    def __init__(self, models: list[torch.nn.Module], cfgs: list[dict], autocast, fmt,
                 mean: torch.Tensor, std: torch.Tensor):
        (self.model,), (cfg,) = models, cfgs
        self.cfg, self.autocast, self.fmt, self.mean, self.std = cfg, autocast, fmt, mean, std
        self.opt = torch.optim.SGD(self.model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"],
                                   weight_decay=cfg["weight_decay"])
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.scheduled = cfg["schedule"] != "constant"
        self.model.train()

    def _loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of one normalised batch."""
        with self.autocast():
            return F.cross_entropy(self.model(x.contiguous(memory_format=self.fmt)).float(), y)

    def gradients(self, xb, yb, second, c_t: float) -> list[float]:
        cfg = self.cfg
        if self.scheduled:
            for group in self.opt.param_groups:
                group["lr"] = cfg["lr"] * c_t
        loss = self._loss(xb[0], yb[0])
        objective = loss
        alpha, penalty = cfg["enhance_alpha"], cfg["grad_penalty"]
        if alpha > 0:  # ĝ = (1+α)ĝ₁ − αĝ₂: the gradient of (1+α)L̂₁ − αL̂₂
            objective = (1 + alpha) * loss - alpha * self._loss(second[0][0], second[1][0])
        elif penalty > 0:  # L̂_B + λ‖∇L̂_B‖², by double backward
            g = torch.autograd.grad(loss, self.params, create_graph=True)
            objective = loss + penalty * sum((gi * gi).sum() for gi in g)
        self.opt.zero_grad(set_to_none=True)
        objective.backward()
        return [loss.item()]

    def update(self, c_t: float) -> None:
        self.opt.step()

    def keep(self, rows: list[int]) -> None:
        """Nothing to drop: one run stops the loop when it diverges."""

    def lr_used(self, j: int, c_t: float) -> float:
        return self.opt.param_groups[0]["lr"]

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple[float, float]]:
        return [evaluate(self.model, x, y[0], self.mean, self.std, memory_format=self.fmt,
                         autocast=self.autocast)]

    def module(self, j: int) -> torch.nn.Module:
        return self.model


class StackedStep:
    """The step of R runs of one stateless model at once (the mlp, no BatchNorm: nothing
    is updated inside the forward pass): parameters stacked with
    ``torch.func.stack_module_state``, one ``vmap(grad(...))`` for every run, and
    ``torch.optim.SGD``'s update written out with one row per run. Interface: see
    :class:`ModuleStep`.
    """

    def __init__(self, models: list[torch.nn.Module], cfgs: list[dict], autocast, fmt,
                 mean: torch.Tensor, std: torch.Tensor):
        from torch.func import functional_call, grad, stack_module_state, vmap

        self.models, self.cfgs, self.autocast, self.mean, self.std = models, cfgs, autocast, mean, std
        self.runs = list(range(len(cfgs)))  # the run of each row
        params, _ = stack_module_state(models)
        self.params = {k: v.detach().clone() for k, v in params.items()}
        self.names = list(self.params)
        base, dev = models[0], mean.device

        def loss_of(p: dict, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return F.cross_entropy(functional_call(base, p, (x,)).float(), y)

        use_two = cfgs[0]["enhance_alpha"] > 0  # the same for the whole group (group_key)
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

        self.step_fn = vmap(grad(objective, has_aux=True))
        self.logits_fn = vmap(lambda p, x: functional_call(base, p, (x,)), in_dims=(0, None))
        lr = torch.tensor([c["lr"] for c in cfgs], device=dev)
        # Per-run hyper-parameters, one row per active run.
        self.hyper = {"lr": lr, **{k: torch.tensor([c[name] for c in cfgs], device=dev) for k, name in
                                   (("lam", "grad_penalty"), ("alpha", "enhance_alpha"),
                                    ("mom", "momentum"), ("wd", "weight_decay"))}}
        self.use_mom = bool((self.hyper["mom"] > 0).any())
        self.use_wd = bool((self.hyper["wd"] > 0).any())
        self.bufs = {k: torch.zeros_like(v) for k, v in self.params.items()} if self.use_mom else None
        self.scheduled = cfgs[0]["schedule"] != "constant"
        self.grads: dict[str, torch.Tensor] = {}

    def gradients(self, xb, yb, second, c_t: float) -> list[float]:
        x2, y2 = second if second is not None else (xb, yb)  # unused without enhancement
        with self.autocast():
            self.grads, losses = self.step_fn(self.params, xb, yb, x2, y2, self.hyper["lam"],
                                              self.hyper["alpha"])
        return losses.detach().cpu().tolist()

    def update(self, c_t: float) -> None:
        h = self.hyper
        lr_t = h["lr"] * c_t if self.scheduled else h["lr"]
        with torch.no_grad():
            for k in self.names:  # torch.optim.SGD's update, one row per run
                g = self.grads[k]
                if self.use_wd:
                    g = g + _rows(h["wd"], g) * self.params[k]
                if self.bufs is not None:
                    self.bufs[k] = _rows(h["mom"], g) * self.bufs[k] + g
                    g = self.bufs[k]
                self.params[k] = self.params[k] - _rows(lr_t, g) * g

    def keep(self, rows: list[int]) -> None:
        k_idx = torch.tensor(rows, dtype=torch.long, device=self.mean.device)
        self.runs = [self.runs[j] for j in rows]
        self.params = {k: v[k_idx] for k, v in self.params.items()}
        self.grads = {k: v[k_idx] for k, v in self.grads.items()}
        self.hyper = {k: v[k_idx] for k, v in self.hyper.items()}
        if self.bufs is not None:
            self.bufs = {k: v[k_idx] for k, v in self.bufs.items()}

    def lr_used(self, j: int, c_t: float) -> float:
        return float(self.cfgs[self.runs[j]]["lr"] * c_t)

    @torch.no_grad()
    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> list[tuple[float, float]]:
        R, k = y.shape
        loss_sum = torch.zeros(R, dtype=torch.float64, device=x.device)
        correct = torch.zeros(R, dtype=torch.int64, device=x.device)
        for i in range(0, k, EVAL_BATCH):
            with self.autocast():
                out = self.logits_fn(self.params, normalise(x[i:i + EVAL_BATCH], self.mean, self.std))
            out = out.float()
            yb = y[:, i:i + EVAL_BATCH]
            ce = F.cross_entropy(out.flatten(0, 1), yb.flatten(), reduction="none")
            loss_sum += ce.view(R, -1).sum(1).double()
            correct += (out.argmax(-1) == yb).sum(1)
        return [(float(loss_sum[j]) / k, int(correct[j]) / k) for j in range(R)]

    def module(self, j: int) -> torch.nn.Module:
        """Row j's run as one module (its own network, weights copied in)."""
        model = self.models[self.runs[j]]
        with torch.no_grad():
            for k, v in model.named_parameters():
                v.copy_(self.params[k][j])
        return model


def _rows(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-run vector (R,) shaped to broadcast over stacked parameters (R, ...)."""
    return v.view(-1, *([1] * (like.dim() - 1)))


# ---------------------------------------------------------------- measurements
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
