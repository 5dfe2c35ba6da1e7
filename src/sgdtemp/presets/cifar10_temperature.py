"""Parameters of the chapter ``cifar10_temperature``, and its three arms of training runs.

* The **temperature grid**: every temperature T crossed with every batch size B
  (lr = T·B), crossed with ``n_seeds`` seeds ``seed, seed + 1, ...``. A seed sets the
  initial weights, the batch order and the augmentation, so the runs of one seed at
  different B are *paired*: the invariance claim differences them seed by seed.
* The **breaking arm**: at the temperature ``break_temperature``, (β·η₀, β·B₀) for every β
  in ``break_betas`` from the grid's largest batch B₀ = max(batch_sizes), η₀ = T·B₀, with
  ``break_seeds`` seeds: equal T, ever larger steps, until the discrete steps leave the
  diffusion picture (η·λ_max ≥ 2).
* The **long arm**: the grid's runs at the smallest batch size, first seed, coldest and
  hottest temperature, trained for ``long_epochs`` instead of ``epochs`` (0: none), to see
  when the training loss stops falling.
* The **decay arm** (weight decay λ): at ``break_temperature`` and the grid's largest batch
  B₀, each λ of ``decay_arm`` with ``decay_arm_seeds`` seeds; beside the grid's own λ
  (``weight_decay``) it gives the slope of the equilibrium weight norm in log λ.

:func:`training_configs` turns the chapter's parameters into run configurations, in the
order a partial sweep is most useful in: the first seed of every (T, B) pair, then the
second seed of every pair, ..., then the breaking arm (seed by seed), then the decay arm
(seed by seed), then the long arm.
The chapter and ``python -m sgdtemp sweep --preset cifar10_temperature:<fidelity>`` both
use it, so they read and write the same results in the store.

**Grids.** The parameter ``grid`` names the preset table every parameter left ``None``
takes (:data:`GRIDS`): ``smoke`` (CI, seconds: the stationary design in miniature;
``smoke_reference``, the reference design in miniature), ``quick`` (the first, 6-epoch grid on
10,000 images: minutes of CPU; its results are committed in
``results/cifar10_temperature_quick``, its default store), ``reference`` (all 50,000
images, 30 epochs, no augmentation, curvature of the loss SGD descends: hours of CPU),
``reference_90`` (the same for 90 epochs, the length the long arm showed the training
loss needs to plateau: its sweep is under way, in the chapter's store), ``stationary``
(issue 21: the reference setup with weight decay, so that SGD has a stationary state; see
below) and ``paper`` (the stationary design on a ResNet, on a GPU). Each fidelity has its
grid (:data:`FIDELITY_GRID`);
``default`` takes ``stationary``, whose runs are committed in
``results/cifar10_temperature`` as its sweep finishes them (so the book reads them instead of
training); the ``reference`` grid's 23 runs are committed there too. A grid is (re)computed
with ``python -m sgdtemp sweep --preset cifar10_temperature:default [-p grid NAME]``.

Every run evaluates the test set and the domain-shifted test set on the same fixed
class-balanced subset of ``n_test`` images (so the two gaps differ by the shift alone):
evaluating all 20,000 images after every epoch would cost more CPU time than training.
The shift's corruption strength is ``shift_strength`` (1: the original corruption, which
leaves the reference networks near chance; ``sgdtemp.data.domain_shifted``).

**The stationary grid** (issue 21). Without weight decay the reference setup has no
stationary state: the convolutions in front of a BatchNorm are scale-invariant
(``sgdtemp.models.scale_invariant_weights``), so their norm |w| grows without bound and the
temperature they feel, T/|w|², drifts down. With coupled weight decay λ
(``torch.optim.SGD(weight_decay=λ)`` adds λw to the gradient, so a step multiplies w by
1 − ηλ before the gradient step) a step changes |w|² by −2ηλ|w|² + η²|g̃|²/|w|² (the
gradient is orthogonal to w and scales as 1/|w|; g̃ is the gradient at |w| = 1), which
balances at |w|⁴ = η|g̃|²/(2λ) ≈ T·tr Σ̃/(2λ) where minibatch noise dominates
(|g̃|² ≈ tr Σ̃/B): set by T and λ, not by η and B apart, and reached at the rate 4ηλ per
step, i.e. in about 1/(4TλN) epochs. ``stationary`` takes λ = 5e-3, so that this time is
two epochs at its coldest T (5e-4) on all 50,000 images, records the weight norms every
epoch (``record_weight_norms``) and weakens the domain shift to ``shift_strength`` 0.4
(pilot: results/cifar10_temperature/STATIONARY_PLAN.md). Its decay arm runs λ = 0 (the
control: the norm grows, as in the reference grid, but now recorded), λ/2 and 2λ at
T = 1e-3; the last two have the products Tλ of the grid's coldest and hottest cells.
"""

from __future__ import annotations

from typing import Any

from sgdtemp.presets import training_run_params
from sgdtemp.chapters import repo_root
from sgdtemp.params import (
    Config, Param, ParameterError, ParameterSet, in_range, list_of, one_of, optional,
    positive_int, text,
)

CHAPTER = "cifar10_temperature"
N_TEST_FULL = 10_000  # the size of the CIFAR-10 and Fashion-MNIST test sets
N_TRAIN_FULL = {"cifar10": 50_000, "fashion_mnist": 60_000}

#: The preset table each fidelity takes by default. "default" is the stationary grid (issue
#: 21): its runs are committed in results/cifar10_temperature as its sweep finishes them
#: (tests/test_cifar10_preset.py counts the missing ones), so building the book reads them.
FIDELITY_GRID = {"smoke": "smoke", "default": "stationary", "paper": "paper"}

#: Where the quick grid's committed runs are (the chapter's own folder holds the reference
#: grid, every run of it on all 50,000 images for at least 30 epochs).
QUICK_STORE = repo_root() / "results" / f"{CHAPTER}_quick"

# Issue 11: the whole training set, long enough to plateau, no augmentation (so that a
# 24k-parameter CNN can overfit: a generalization gap for temperature to act on), the
# hottest pair at η = 0.256 (the first grid broke at 0.512), curvature of the loss SGD
# descends (BatchNorm on fixed batches of each run's own B). At 30 epochs none of the
# B = 32 runs had plateaued; the long arm runs two of them for 90.
_REFERENCE: dict[str, Any] = dict(
    model="small_cnn", width=None, augment=False,
    temperatures=[5e-4, 1e-3, 2e-3], batch_sizes=[32, 64, 128], n_seeds=2, epochs=30,
    n_train=50_000, n_test=5000, curvature_batchnorm="train", curvature_examples=1024,
    curvature_probes=16, curvature_iters=16, break_temperature=1e-3, break_betas=[2, 4, 8],
    break_seeds=1, plateau_epochs=10, long_epochs=90)

#: The options added for issue 21, at the values that leave a grid's runs (and store keys)
#: as they were: no weight decay, no decay arm, no norm records, the original shift.
_NO_DECAY: dict[str, Any] = dict(weight_decay=0.0, decay_arm=[], decay_arm_seeds=1,
                                 record_weight_norms=False, shift_strength=1.0)

#: The preset tables: for each grid, a value of every chapter parameter below.
GRIDS: dict[str, dict[str, Any]] = {
    # CI's grid (seconds): the stationary design in miniature, so that every section of the
    # chapter runs — weight decay, norms recorded, a decay arm whose λ/4 and 4λ match the
    # products Tλ of the grid's coldest and hottest cells, the shift at strength 0.4.
    "smoke": dict(
        model="small_cnn", width=None, augment=False,
        temperatures=[2.5e-4, 1e-3, 4e-3], batch_sizes=[10, 40], n_seeds=2, epochs=4,
        n_train=500, n_test=250, curvature_batchnorm="train", curvature_examples=80,
        curvature_probes=6, curvature_iters=5, break_temperature=1e-3, break_betas=[2, 4],
        break_seeds=1, plateau_epochs=3, long_epochs=0, weight_decay=5e-3,
        decay_arm=[0.0, 1.25e-3, 2e-2], decay_arm_seeds=1, record_weight_norms=True,
        shift_strength=0.4),
    # The smoke grid before issue 21 (the reference design in miniature, no weight decay,
    # with a long arm): `-p grid smoke_reference`.
    "smoke_reference": dict(
        model="small_cnn", width=None, augment=True,
        temperatures=[2.5e-4, 1e-3, 4e-3], batch_sizes=[10, 20, 40], n_seeds=2, epochs=3,
        n_train=500, n_test=250, curvature_batchnorm="train", curvature_examples=80,
        curvature_probes=6, curvature_iters=5, break_temperature=1e-3, break_betas=[2, 4],
        break_seeds=1, plateau_epochs=3, long_epochs=6, **_NO_DECAY),
    # The first grid (issue 3), kept reproducible: its 18 runs are committed. Its hottest
    # B = 128 pair (η = 0.512) is already past the breaking point, and its curvature is
    # measured with BatchNorm's running statistics.
    "quick": dict(
        model="small_cnn", width=None, augment=True,
        temperatures=[2.5e-4, 1e-3, 4e-3], batch_sizes=[32, 64, 128], n_seeds=2, epochs=6,
        n_train=10_000, n_test=2000, curvature_batchnorm="eval", curvature_examples=512,
        curvature_probes=16, curvature_iters=12, break_temperature=1e-3, break_betas=[],
        break_seeds=1, plateau_epochs=4, long_epochs=0, **_NO_DECAY),
    "reference": {**_REFERENCE, **_NO_DECAY},  # issue 11's grid (above)
    # The reference grid at the length its long arm needed (the B = 32 runs settled at
    # epochs 83 and 65): 90 epochs for every run, breaking arm included. Its runs share the
    # chapter's store; two of them are the long arm's (same configurations, same keys).
    "reference_90": {**_REFERENCE, **_NO_DECAY, "epochs": 90, "long_epochs": 0},
    # Issue 21: the reference setup with a stationary state. Weight decay λ = 5e-3 (the norm
    # of the scale-invariant convolutions relaxes in ~1/(4TλN) = 2 epochs at the coldest T),
    # B ∈ {32, 128} × 4 seeds, the breaking arm with 2 seeds, the decay arm λ = 0 (control),
    # λ/2 and 2λ at T = 1e-3, norms recorded every epoch, the domain shift at strength 0.4
    # (the pilot's networks kept 82% of their clean accuracy there, 30–40% at the original
    # strength 1). 36 runs of 40 epochs on all 50,000 images: about 5.6 CPU-hours
    # (cpu_seconds_estimate).
    "stationary": {
        **_REFERENCE, "batch_sizes": [32, 128], "n_seeds": 4, "epochs": 40,
        "break_seeds": 2, "long_epochs": 0, "weight_decay": 5e-3,
        "decay_arm": [0.0, 2.5e-3, 1e-2], "decay_arm_seeds": 2, "record_weight_norms": True,
        "shift_strength": 0.4},
    # A GPU: the stationary design on a ResNet (width 32), temperatures halved and batch
    # sizes doubled (η ≤ 0.256 again; the norm relaxes in ~1/(4TλN) = 4 epochs at the
    # coldest T); 36 runs, about 15 minutes of one H200 at 80,000 images/s
    # (bench/paper_cifar10_gpu.py; no GPU has run it yet).
    "paper": dict(
        model="resnet", width=32, augment=False,
        temperatures=[2.5e-4, 5e-4, 1e-3], batch_sizes=[64, 256], n_seeds=4, epochs=30,
        n_train=50_000, n_test=5000, curvature_batchnorm="train", curvature_examples=2048,
        curvature_probes=32, curvature_iters=20, break_temperature=5e-4, break_betas=[2, 4, 8],
        break_seeds=2, plateau_epochs=10, long_epochs=0, weight_decay=5e-3,
        decay_arm=[0.0, 2.5e-3, 1e-2], decay_arm_seeds=2, record_weight_norms=True,
        shift_strength=0.4),
}


def _batch_sizes_fit(cfg: Config) -> str | None:
    n_full = N_TRAIN_FULL[cfg.dataset]
    if cfg.n_train > n_full:
        return f"n_train must be at most {n_full} for {cfg.dataset}; got {cfg.n_train}."
    if max(cfg.batch_sizes) > cfg.n_train:
        return (f"batch_sizes must each be at most n_train = {cfg.n_train}; "
                f"got {max(cfg.batch_sizes)}.")
    for b in cfg.break_betas:
        if round(b * max(cfg.batch_sizes)) > cfg.n_train:
            return (f"break_betas × max(batch_sizes) must be at most n_train = {cfg.n_train}; "
                    f"got {b:g} × {max(cfg.batch_sizes)}.")
    return None


def _curvature_fits(cfg: Config) -> str | None:
    if cfg.curvature_examples > cfg.n_train:
        return (f"curvature_examples must be at most n_train = {cfg.n_train}; "
                f"got {cfg.curvature_examples}.")
    return None


def _long_arm_fits(cfg: Config) -> str | None:
    if cfg.long_epochs != 0 and cfg.long_epochs <= cfg.epochs:
        return (f"long_epochs must be 0 (no long arm) or more than epochs = {cfg.epochs}; "
                f"got {cfg.long_epochs}.")
    return None


def _plateau_fits(cfg: Config) -> str | None:
    if cfg.plateau_epochs > cfg.epochs + 1:
        return (f"plateau_epochs must be at most epochs + 1 = {cfg.epochs + 1} (the points of the "
                f"training-loss curve, epoch 0 included); got {cfg.plateau_epochs}.")
    return None


def _decay_arm_fits(cfg: Config) -> str | None:
    if cfg.decay_arm and cfg.model == "mlp":
        return ("decay_arm must be [] for the mlp (it has no scale-invariant weights whose "
                "norm the arm measures); got " + repr(cfg.decay_arm) + ".")
    if cfg.record_weight_norms and cfg.model == "mlp":
        return ("record_weight_norms must be False for the mlp (it has no BatchNorm, so no "
                "scale-invariant weights); got True.")
    return None


_T = in_range(1e-6, 0.1)


def _p(name: str, check, doc: str) -> Param:
    """A parameter whose preset comes from the grid tables: as a per-fidelity preset, the
    value of each fidelity's own grid (what ``params`` and the reproducing appendix show);
    another grid, chosen with ``grid``, fills it from its table instead."""
    from sgdtemp.params import FIDELITIES

    return Param(name, {f: GRIDS[FIDELITY_GRID[f]][name] for f in FIDELITIES}, check, doc)


class GridParameterSet(ParameterSet):
    """The chapter's :class:`ParameterSet`, with presets looked up in the table of the
    parameter ``grid`` (itself preset per fidelity by :data:`FIDELITY_GRID`) rather than
    by fidelity."""

    def resolve(self, **values: Any) -> Config:
        from sgdtemp.params import resolve_fidelity

        grid = values.get("grid")
        try:
            fidelity = resolve_fidelity(values.get("fidelity"))
        except ParameterError:
            fidelity = None  # refused with its own sentence below
        if grid is None and fidelity is not None:
            grid = FIDELITY_GRID[fidelity]
        if grid in GRIDS:  # a bad grid is refused by its own check below
            values = {**values, **{k: v for k, v in GRIDS[grid].items() if values.get(k) is None}}
        if grid == "quick" and values.get("store") is None and fidelity != "smoke":
            values["store"] = str(QUICK_STORE)  # the first grid's committed runs
        return super().resolve(**{**values, "grid": grid})


PARAMETERS = GridParameterSet(
    chapter=CHAPTER,
    params=[
        Param("grid", FIDELITY_GRID, one_of(*GRIDS),
              "preset table the parameters left None take: smoke (the stationary design in "
              "miniature), smoke_reference (the reference design in miniature), quick (6 epochs on 10k images, "
              "the first grid), reference (all 50k images, 30 epochs, no augmentation, "
              "T ∈ {5e-4, 1e-3, 2e-3} × B ∈ {32, 64, 128}, a breaking arm to B = 1024), "
              "reference_90 (the same for 90 epochs), stationary (weight decay 5e-3, "
              "B ∈ {32, 128} × 4 seeds, 40 epochs, weight norms recorded, a decay arm, the "
              "domain shift at strength 0.4) or paper (the stationary design on a ResNet, GPU)"),
        Param("data_dir", None, optional(text),
              "folder holding cifar10-jpeg.tar.gz or cifar-10-batches-py (None: $SGDTEMP_DATA)"),
        Param("download", True, one_of(True, False),
              "fetch the data set into data_dir with torchvision when it is missing (online only)"),
        Param("dataset", "cifar10", one_of("cifar10", "fashion_mnist"), "data set"),
        _p("model", one_of("small_cnn", "resnet", "mlp"), "network"),
        # None is a value here (the model's default width), so the preset is not a table
        Param("width", None, optional(positive_int),
              "network width (None: the grid's, i.e. the model's default; paper: 32)"),
        _p("augment", one_of(True, False), "random crop and flip of every training batch"),
        _p("temperatures", list_of(_T, min_len=3), "temperatures T = lr / batch_size, at least three"),
        _p("batch_sizes", list_of(in_range(1, 60_000, integer=True), min_len=2),
           "batch sizes B run at every temperature (lr = T·B)"),
        _p("n_seeds", in_range(2, 50, integer=True), "seeds per (T, B) pair: seed, seed + 1, ..."),
        _p("epochs", in_range(1, 1000, integer=True),
           "epochs per run (equal epochs = equal SDE time N·T at every B)"),
        _p("n_train", in_range(10, 60_000, integer=True), "training examples (a class-balanced subset)"),
        _p("n_test", in_range(10, N_TEST_FULL, integer=True),
           "test images evaluated (a fixed class-balanced subset; the same for the shifted set)"),
        _p("curvature_batchnorm", one_of("eval", "train"),
           "Hessian with BatchNorm's running statistics (eval) or on fixed batches of each run's "
           "B normalised by their own statistics (train: the loss SGD descends)"),
        _p("curvature_examples", positive_int,
           "training examples the Hessian trace and top eigenvalue are measured on"),
        _p("curvature_probes", in_range(2, 1000, integer=True), "Hutchinson probes for the Hessian trace"),
        _p("curvature_iters", in_range(2, 1000, integer=True), "Lanczos iterations for the top eigenvalue"),
        _p("break_temperature", _T, "temperature of the breaking arm"),
        _p("break_betas", list_of(in_range(1.0, 1000.0), min_len=0),
           "factors β of the breaking arm's (β·T·B₀, β·B₀), B₀ = max(batch_sizes); [] for none"),
        _p("break_seeds", in_range(1, 50, integer=True), "seeds of each breaking-arm run"),
        _p("plateau_epochs", in_range(3, 1000, integer=True),
           "the last epochs whose training-loss trend decides whether a run has plateaued"),
        _p("long_epochs", in_range(0, 10_000, integer=True),
           "epochs of the long arm (the smallest batch at the coldest and the hottest "
           "temperature, first seed), which shows when the training loss plateaus; 0 for none"),
        _p("weight_decay", in_range(0.0, 1.0),
           "weight decay λ of every run but the decay arm's: coupled L2 (torch.optim.SGD adds "
           "λw to the gradient, so a step multiplies w by 1 − ηλ first); 0 for none"),
        _p("decay_arm", list_of(in_range(0.0, 1.0), min_len=0),
           "weight decays λ of the decay arm, each run at break_temperature and "
           "B₀ = max(batch_sizes); [] for none"),
        _p("decay_arm_seeds", in_range(1, 50, integer=True), "seeds of each decay-arm run"),
        _p("record_weight_norms", one_of(True, False),
           "record every epoch |w|² of the scale-invariant weights (the convolutions in front "
           "of a BatchNorm), per layer and summed, and the effective temperature T/|w|²"),
        _p("shift_strength", in_range(0.0, 1.0),
           "corruption strength s of the domain-shifted test set: contrast 1 − s/2, s × a "
           "3×3 blur, noise std 0.08·s (1: the original shift, 0: none)"),
    ] + training_run_params(CHAPTER),
    rules=[_batch_sizes_fit, _curvature_fits, _plateau_fits, _long_arm_fits, _decay_arm_fits],
)


# ---------------------------------------------------------------- runs
def _fixed(cfg: Config) -> dict[str, Any]:
    return dict(
        dataset=cfg.dataset, data_dir=cfg.data_dir, model=cfg.model, epochs=cfg.epochs,
        n_train=cfg.n_train, device=cfg.device, curvature=True,
        curvature_probes=cfg.curvature_probes, curvature_iters=cfg.curvature_iters,
        # the same n_test images for the test and the shifted test set, and as many
        # training images for the training loss
        eval_test_examples=cfg.n_test, eval_train_examples=min(cfg.n_train, cfg.n_test),
        **({} if cfg.width is None else {"width": cfg.width}),
        # left out at their defaults, so the first grid's runs keep their store keys
        **({} if cfg.augment == (cfg.dataset == "cifar10") else {"augment": cfg.augment}),
        **({} if cfg.curvature_batchnorm == "eval" else {"curvature_batchnorm": "train"}),
        # issue 21's options: at their defaults they are left out of a run's key by the store
        weight_decay=float(cfg.weight_decay), record_weight_norms=bool(cfg.record_weight_norms),
        shift_strength=float(cfg.shift_strength),
    )


def _curvature_examples(cfg: Config, batch_size: int) -> int:
    """At least one whole batch of B when the curvature is measured on batches of B."""
    if cfg.curvature_batchnorm == "train":
        return max(cfg.curvature_examples, batch_size)
    return cfg.curvature_examples


def arm_configs(cfg: Config) -> dict[str, Any]:
    """The runs, as complete configurations of ``sgdtemp.train.run_training``:
    ``{"grid": runs[i_T][i_B][i_seed], "breaking": runs[i_beta][i_seed], "decay":
    runs[i_lambda][i_seed], "long": [coldest, hottest]}``; a long run is the grid's (T, min B,
    first seed) run for ``long_epochs``; a decay-arm run is the grid's (break_temperature, B₀)
    cell with weight decay λ (whether or not break_temperature is one of the grid's)."""
    from sgdtemp.sweep import lr_for
    from sgdtemp.train import training_config

    fixed = _fixed(cfg)
    seeds = [cfg.seed + i for i in range(cfg.n_seeds)]
    grid = [[[training_config(**fixed, lr=lr_for(T, B), batch_size=int(B), seed=s,
                              curvature_examples=_curvature_examples(cfg, B))
              for s in seeds] for B in cfg.batch_sizes] for T in cfg.temperatures]
    B0 = max(cfg.batch_sizes)
    breaking = []
    for beta in cfg.break_betas:
        B = round(beta * B0)
        breaking.append([training_config(**fixed, lr=lr_for(cfg.break_temperature, B), batch_size=B,
                                         seed=cfg.seed + i, curvature_examples=_curvature_examples(cfg, B))
                         for i in range(cfg.break_seeds)])
    decay = [[training_config(**{**fixed, "weight_decay": float(lam)},
                              lr=lr_for(cfg.break_temperature, B0), batch_size=int(B0),
                              seed=cfg.seed + i, curvature_examples=_curvature_examples(cfg, B0))
              for i in range(cfg.decay_arm_seeds)] for lam in cfg.decay_arm]
    long = []
    if cfg.long_epochs:
        B = min(cfg.batch_sizes)
        for T in (min(cfg.temperatures), max(cfg.temperatures)):
            long.append(training_config(**{**fixed, "epochs": cfg.long_epochs}, lr=lr_for(T, B),
                                        batch_size=int(B), seed=cfg.seed,
                                        curvature_examples=_curvature_examples(cfg, B)))
    return {"grid": grid, "breaking": breaking, "decay": decay, "long": long}


#: The grid whose long arm (no weight decay) a grid without one reads: the weight-decay
#: grids show, beside their own runs, why the reference setup never settles.
NO_DECAY_GRID = {"smoke": "smoke_reference", "stationary": "reference"}


def no_decay_long_arm(cfg: Config) -> list[dict]:
    """The long runs without weight decay the chapter reads: ``cfg``'s own long arm when it
    has one; otherwise that of :data:`NO_DECAY_GRID` [``cfg.grid``] (its coldest and hottest
    temperature at its smallest batch, ``long_epochs`` epochs), from the same store and seed;
    ``[]`` for a grid with neither (``paper``, ``quick``)."""
    if cfg.long_epochs:
        return arm_configs(cfg)["long"]
    other = NO_DECAY_GRID.get(cfg.grid)
    if other is None:
        return []
    ref = PARAMETERS.resolve(fidelity=cfg.fidelity, grid=other, seed=cfg.seed, store=cfg.store,
                             data_dir=cfg.data_dir, download=cfg.download, device=cfg.device)
    return arm_configs(ref)["long"]


def training_configs(cfg: Config) -> list[dict]:
    """Every run of the chapter, most useful first: seed by seed, each seed's (T, B) pairs
    (T, then B), then the breaking arm seed by seed (β fastest), then the decay arm seed by
    seed (λ fastest), then the long arm."""
    arms = arm_configs(cfg)
    out = [arms["grid"][i][j][s] for s in range(cfg.n_seeds)
           for i in range(len(cfg.temperatures)) for j in range(len(cfg.batch_sizes))]
    out += [arms["breaking"][k][s] for s in range(cfg.break_seeds)
            for k in range(len(cfg.break_betas))]
    out += [arms["decay"][k][s] for s in range(cfg.decay_arm_seeds)
            for k in range(len(cfg.decay_arm))]
    return out + arms["long"]


#: small_cnn training throughput on one core of this project's 2-core machine, in images per
#: CPU-second, by batch size: a few hundred steps of each (40 at B = 1024) on CIFAR-10, one
#: torch thread, weight decay and norm records on, under ``nice`` beside two other sweeps
#: (load 5–9), 2026-12-05. Repeated measurements differed by up to 17% (B = 32: 4,480,
#: 3,713, 3,930; B = 128: 4,860, 4,484); the table takes the middle or lower values.
SMALL_CNN_CPU_RATE = {32: 3900.0, 128: 4500.0, 256: 3700.0, 512: 3250.0, 1024: 3360.0}
#: An evaluated image costs about a third of a trained one; a Hessian-vector product over an
#: example about 3.5 (bench/paper_cifar10_gpu.py's HVP_COST).
_EVAL_COST, _HVP_COST = 1 / 3, 3.5


def cpu_seconds_estimate(config: dict) -> float:
    """CPU-seconds one small_cnn run of ``config`` (a complete training configuration) costs
    on this project's CPU: its training images (epochs × ⌊N/B⌋ × B), its evaluations (after
    epoch 0 and every epoch: the training, test and shifted-test subsets) and its curvature
    (probes + Lanczos iterations, each a Hessian-vector product over the curvature
    examples), at :data:`SMALL_CNN_CPU_RATE` (interpolated in log B; the rate of B = 128 for
    evaluation and curvature). Raises ValueError for another model."""
    import math

    if config["model"] != "small_cnn":
        raise ValueError(f"cpu_seconds_estimate knows small_cnn only; got {config['model']!r}.")
    n = config["n_train"] or N_TRAIN_FULL[config["dataset"]]
    B = config["batch_size"]
    bs = sorted(SMALL_CNN_CPU_RATE)
    lb = min(max(math.log(B), math.log(bs[0])), math.log(bs[-1]))
    i = max(j for j in range(len(bs)) if math.log(bs[j]) <= lb)
    if i == len(bs) - 1:
        rate = SMALL_CNN_CPU_RATE[bs[i]]
    else:
        f = (lb - math.log(bs[i])) / (math.log(bs[i + 1]) - math.log(bs[i]))
        rate = (1 - f) * SMALL_CNN_CPU_RATE[bs[i]] + f * SMALL_CNN_CPU_RATE[bs[i + 1]]
    train = config["epochs"] * (n // B) * B / rate
    per_eval = config["eval_train_examples"] + 2 * (config["eval_test_examples"] or N_TEST_FULL)
    evaluation = (config["epochs"] + 1) * per_eval * _EVAL_COST / SMALL_CNN_CPU_RATE[128]
    curv = 0.0
    if config["curvature"]:
        curv = ((config["curvature_probes"] + config["curvature_iters"])
                * config["curvature_examples"] * _HVP_COST / SMALL_CNN_CPU_RATE[128])
    return train + evaluation + curv


def required_datasets(cfg: Config) -> list[str]:
    """The data the chapter reads (checked by ``python -m sgdtemp run`` before any cell)."""
    return [cfg.dataset]
