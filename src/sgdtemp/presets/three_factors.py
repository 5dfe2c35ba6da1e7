"""Parameters of the chapter ``three_factors``, and its four grids of training runs.

Seed 001 (Jastrzębski, Kenton et al., "Three factors influencing minima in SGD") on
Fashion-MNIST MLPs, in four arms that :func:`arm_configs` builds from the chapter's
parameters (the chapter and ``python -m sgdtemp sweep --preset three_factors:<fidelity>``
both use them, so they read and write the same results):

* ``width``: every learning rate in ``lrs`` × every batch size in ``batch_sizes`` ×
  ``n_seeds`` seeds, with the Hessian's trace, top eigenvalue and Frobenius norm measured
  at the end of each run. Doubling lr and B together keeps η/B, so the grid's diagonals
  hold runs of equal temperature reached with different η.
* ``rescale``: (β·η₀, β·B₀) for every β in ``betas`` and every training-set size in
  ``rescale_n_train``, ``rescale_seeds`` seeds each; every run measures the gradient noise
  scale B_simple = tr Σ/|G|² every ``noise_scale_every`` epochs and the top Hessian
  eigenvalue λ_max at its end, the two quantities that predict where the rescaling breaks
  (β ≈ B_simple/B₀, or βη₀·λ_max ≈ 2).
* ``schedule``: a cyclic learning rate (B = ``cycle_batch_size``, η between
  ``cycle_lr``/``cycle_ratio`` and ``cycle_lr``) against a cyclic batch size (η =
  ``cycle_lr``, B between ``cycle_batch_size`` and ``cycle_ratio``·``cycle_batch_size``),
  the same η/B at every point of training, and the paper's two constant baselines at the
  cold end: (B₀, η_max/r) and (r·B₀, η_max).
* ``memorization``: a one-hidden-layer MLP on ``memorization_n_train`` examples with a
  fraction ``label_noise`` of the labels replaced, at the batch size
  ``memorization_batch_size`` and every learning rate in ``memorization_lrs`` (the
  temperature set through η, so every run takes the same steps), ``memorization_seeds``
  seeds each.
"""

from __future__ import annotations

from typing import Any

from sgdtemp.presets import training_run_params
from sgdtemp.params import (
    Config, Param, ParameterSet, in_range, list_of, one_of, optional, positive_int, text,
)

CHAPTER = "three_factors"
N_FULL = {"fashion_mnist": 60_000, "cifar10": 50_000}
ARMS = ("width", "rescale", "schedule", "memorization")


def _fraction(v: Any) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1
    return None if ok else "a fraction in [0, 1)"


def _betas_include_one(cfg: Config) -> str | None:
    if 1 not in cfg.betas:
        return f"betas must include 1 (the run every other β is compared with); got {cfg.betas!r}."
    return None


def _sizes_fit(cfg: Config) -> str | None:
    n_full = N_FULL[cfg.dataset]
    checks = [("n_train", cfg.n_train, max(cfg.batch_sizes), "batch_sizes")]
    checks += [("rescale_n_train", n, round(max(cfg.betas) * cfg.rescale_batch_size),
                "rescale_batch_size × max(betas)") for n in cfg.rescale_n_train]
    checks += [("n_train", cfg.n_train, round(cfg.cycle_ratio * cfg.cycle_batch_size),
                "cycle_batch_size × cycle_ratio")]
    checks += [("memorization_n_train", cfg.memorization_n_train,
                cfg.memorization_batch_size, "memorization_batch_size")]
    for name, n, b, what in checks:
        if n > n_full:
            return f"{name} must be at most {n_full} for {cfg.dataset}; got {n}."
        if b > n:
            return f"{what} must be at most {name} = {n}; got {b}."
    small = min(cfg.rescale_n_train)
    if cfg.noise_scale_examples > small:
        return f"noise_scale_examples must be at most min(rescale_n_train) = {small}; got {cfg.noise_scale_examples}."
    if cfg.curvature_examples > cfg.n_train:
        return f"curvature_examples must be at most n_train = {cfg.n_train}; got {cfg.curvature_examples}."
    return None


_lr = in_range(1e-6, 10.0)
PARAMETERS = ParameterSet(
    chapter=CHAPTER,
    params=[
        Param("data_dir", None, optional(text),
              "folder holding fashion-mnist/*.gz or FashionMNIST/raw (None: $SGDTEMP_DATA)"),
        Param("dataset", "fashion_mnist", one_of("fashion_mnist", "cifar10"), "data set"),
        Param("model", "mlp", one_of("mlp", "small_cnn", "resnet"), "network of the width, rescale "
              "and schedule arms (mlp: grouped, vectorized training)"),
        Param("width", {"smoke": 64, "default": 256, "paper": 256}, positive_int,
              "hidden units per layer of the mlp"),
        Param("depth", {"smoke": 2, "default": 2, "paper": 20}, in_range(1, 100, integer=True),
              "hidden layers of the mlp"),
        # width against η/B
        Param("lrs", {"smoke": [0.02, 0.04], "default": [0.01, 0.02, 0.04, 0.08],
                      "paper": [0.00625, 0.0125, 0.025, 0.05]},
              list_of(_lr, min_len=2), "learning rates of the width grid"),
        Param("batch_sizes", {"smoke": [20, 40], "default": [50, 100, 200, 400],
                              "paper": [50, 100, 200, 400, 800]},
              list_of(in_range(1, 60_000, integer=True), min_len=2),
              "batch sizes of the width grid (each with every lr)"),
        Param("n_train", {"smoke": 1000, "default": 60_000, "paper": 60_000},
              in_range(100, 60_000, integer=True), "training examples of the width and schedule arms"),
        Param("epochs", {"smoke": 2, "default": 15, "paper": 100}, in_range(1, 10_000, integer=True),
              "epochs of every width-grid run"),
        Param("n_seeds", {"smoke": 2, "default": 2, "paper": 3}, in_range(2, 50, integer=True),
              "seeds per width-grid cell: seed, seed + 1, ..."),
        Param("curvature_examples", {"smoke": 256, "default": 2048, "paper": 4096},
              positive_int, "training examples the Hessian is measured on"),
        Param("curvature_probes", {"smoke": 4, "default": 16, "paper": 64},
              in_range(2, 1000, integer=True), "probes for the Hessian trace and Frobenius norm"),
        Param("curvature_iters", {"smoke": 5, "default": 20, "paper": 30},
              in_range(2, 1000, integer=True), "Lanczos iterations for the top eigenvalue"),
        # rescaling (βη, βB)
        Param("betas", {"smoke": [1, 4], "default": [1, 2, 4, 8, 11.3137, 16, 22.6274, 32],
                        "paper": [1, 2, 4, 8, 11.3137, 16, 22.6274, 32, 64]},
              list_of(in_range(1e-3, 1e3), min_len=2), "rescaling factors β of (βη₀, βB₀); must include 1"),
        Param("rescale_lr", {"smoke": 0.02, "default": 0.025, "paper": 0.025}, _lr, "η₀ (β = 1)"),
        Param("rescale_batch_size", {"smoke": 10, "default": 25, "paper": 25},
              in_range(1, 60_000, integer=True), "B₀ (β = 1)"),
        Param("rescale_n_train", {"smoke": [1000, 500], "default": [60_000, 6000],
                                  "paper": [60_000, 12_000, 3000]},
              list_of(in_range(100, 60_000, integer=True), min_len=2),
              "training-set sizes N the rescaling is repeated at"),
        Param("rescale_epochs", {"smoke": 2, "default": 10, "paper": 50},
              in_range(1, 10_000, integer=True), "epochs of every rescaling run"),
        Param("rescale_seeds", {"smoke": 2, "default": 10, "paper": 10}, in_range(2, 50, integer=True),
              "seeds per (β, N)"),
        Param("noise_scale_every", {"smoke": 1, "default": 2, "paper": 5},
              in_range(1, 10_000, integer=True),
              "epochs between measurements of the gradient noise scale in the rescaling runs"),
        Param("noise_scale_examples", {"smoke": 256, "default": 2048, "paper": 2048},
              in_range(64, 60_000, integer=True),
              "training examples B_simple and λ_max of the rescaling runs are measured on"),
        # cyclic schedules
        Param("cycle_lr", {"smoke": 0.05, "default": 0.1, "paper": 0.1}, _lr,
              "η_max: the cyclic-lr run's top learning rate and the cyclic-batch run's fixed one"),
        Param("cycle_batch_size", {"smoke": 20, "default": 128, "paper": 128},
              in_range(1, 60_000, integer=True), "B₀: the cyclic-lr run's batch size and the "
              "cyclic-batch run's smallest"),
        Param("cycle_ratio", 5.0, in_range(1.5, 100.0), "T_max / T_min of the cycles"),
        Param("cycle_epochs", {"smoke": 1.0, "default": 4.0, "paper": 15.0}, in_range(0.1, 1000.0),
              "period of a cycle, in epochs"),
        Param("schedule_epochs", {"smoke": 2, "default": 16, "paper": 120},
              in_range(1, 10_000, integer=True), "epochs of every schedule run"),
        Param("schedule_seeds", {"smoke": 2, "default": 3, "paper": 5}, in_range(2, 50, integer=True),
              "seeds per schedule"),
        # memorization
        Param("label_noise", {"smoke": [0.5], "default": [0.25, 0.5], "paper": [0.25, 0.5]},
              list_of(_fraction), "fractions of training labels replaced by a wrong one"),
        Param("memorization_lrs", {"smoke": [0.05, 0.2], "default": [0.025, 0.05, 0.1, 0.2, 0.4],
                                   "paper": [0.025, 0.05, 0.1, 0.2, 0.4]},
              list_of(_lr, min_len=2),
              "learning rates of the memorization runs (η/B = lr / memorization_batch_size)"),
        Param("memorization_batch_size", {"smoke": 20, "default": 100, "paper": 100},
              in_range(1, 60_000, integer=True),
              "batch size of every memorization run (one B: every run takes the same steps)"),
        Param("memorization_seeds", {"smoke": 2, "default": 8, "paper": 8},
              in_range(2, 50, integer=True), "seeds per (label noise, learning rate)"),
        Param("memorization_n_train", {"smoke": 500, "default": 10_000, "paper": 60_000},
              in_range(100, 60_000, integer=True), "training examples of the memorization runs"),
        Param("memorization_epochs", {"smoke": 3, "default": 40, "paper": 300},
              in_range(1, 10_000, integer=True), "epochs of every memorization run"),
        Param("memorization_width", 256, positive_int,
              "hidden units of the memorization MLP (one hidden layer, as in the paper)"),
    ] + training_run_params(CHAPTER),
    rules=[_betas_include_one, _sizes_fit],
)


# ---------------------------------------------------------------- runs
def _common(cfg: Config) -> dict:
    return dict(dataset=cfg.dataset, data_dir=cfg.data_dir, device=cfg.device)


def _net(cfg: Config) -> dict:
    net: dict[str, Any] = dict(model=cfg.model)
    if cfg.model == "mlp":
        net.update(width=cfg.width, depth=cfg.depth)
    return net


def _seeds(cfg: Config, n: int) -> list[int]:
    return [cfg.seed + i for i in range(n)]


def arm_configs(cfg: Config) -> dict[str, list[dict]]:
    """The runs of each arm (see the module docstring) for resolved parameters ``cfg``, as
    complete configurations of ``sgdtemp.train.run_training``. Orders: width (lr, B, seed);
    rescale (N, β, seed); schedule (arm in :data:`SCHEDULE_ARMS`, seed); memorization
    (label noise, lr, seed); the last fastest."""
    from sgdtemp.train import training_config

    common = _common(cfg)
    width = [
        dict(common, **_net(cfg), lr=lr, batch_size=B, seed=s, epochs=cfg.epochs, n_train=cfg.n_train,
             curvature=True, curvature_frobenius=True, curvature_examples=cfg.curvature_examples,
             curvature_probes=cfg.curvature_probes, curvature_iters=cfg.curvature_iters,
             eval_test_examples=min(10_000, cfg.n_train), eval_train_examples=min(10_000, cfg.n_train))
        for lr in cfg.lrs for B in cfg.batch_sizes for s in _seeds(cfg, cfg.n_seeds)]
    rescale = [
        dict(common, **_net(cfg), lr=rescaled_lr(cfg, b),
             batch_size=round(b * cfg.rescale_batch_size), seed=s, epochs=cfg.rescale_epochs,
             n_train=n, eval_test_examples=5000, eval_train_examples=min(5000, n),
             noise_scale_every=cfg.noise_scale_every, curvature=True,
             curvature_examples=cfg.noise_scale_examples, curvature_probes=2,
             curvature_iters=cfg.curvature_iters)
        for n in cfg.rescale_n_train for b in cfg.betas for s in _seeds(cfg, cfg.rescale_seeds)]
    schedule = [
        dict(common, **_net(cfg), **arm, seed=s, epochs=cfg.schedule_epochs, n_train=cfg.n_train,
             eval_test_examples=min(10_000, cfg.n_train), eval_train_examples=min(10_000, cfg.n_train))
        for arm in schedule_arms(cfg).values() for s in _seeds(cfg, cfg.schedule_seeds)]
    memorization = [
        dict(common, model="mlp", width=cfg.memorization_width, depth=1, lr=float(lr),
             batch_size=cfg.memorization_batch_size, seed=s, label_noise=float(p),
             epochs=cfg.memorization_epochs, n_train=cfg.memorization_n_train,
             eval_train_examples=cfg.memorization_n_train, eval_test_examples=5000)
        for p in cfg.label_noise for lr in cfg.memorization_lrs
        for s in _seeds(cfg, cfg.memorization_seeds)]
    arms = dict(width=width, rescale=rescale, schedule=schedule, memorization=memorization)
    return {k: [training_config(**c) for c in v] for k, v in arms.items()}


def rescaled_lr(cfg: Config, beta: float) -> float:
    """η of the rescaled pair at β: B = round(β·B₀), and η = (B/B₀)·η₀, so that η/B = η₀/B₀
    exactly even where β·B₀ is not a whole number (β = 8√2 gives B = 283, β_eff = 11.32)."""
    return float(f"{round(beta * cfg.rescale_batch_size) / cfg.rescale_batch_size * cfg.rescale_lr:.12g}")


SCHEDULE_ARMS = ("cyclic_lr", "cyclic_batch", "constant_small_batch", "constant_large_batch")


def schedule_arms(cfg: Config) -> dict[str, dict]:
    """The four schedule runs' options: cyclic η at B₀; cyclic B at η_max; and the paper's
    constant baselines at the cold end T_min = η_max/(r·B₀), with B₀ and with r·B₀."""
    r, B0, lr = cfg.cycle_ratio, cfg.cycle_batch_size, cfg.cycle_lr
    cyc = dict(cycle_ratio=float(r), cycle_epochs=float(cfg.cycle_epochs))
    return {
        "cyclic_lr": dict(schedule="cyclic_lr", lr=lr, batch_size=B0, **cyc),
        "cyclic_batch": dict(schedule="cyclic_batch", lr=lr, batch_size=B0, **cyc),
        "constant_small_batch": dict(lr=float(f"{lr / r:.12g}"), batch_size=B0),
        "constant_large_batch": dict(lr=lr, batch_size=round(r * B0)),
    }


def training_configs(cfg: Config) -> list[dict]:
    """Every run of the chapter (all arms, in the order of :data:`ARMS`)."""
    arms = arm_configs(cfg)
    return [c for a in ARMS for c in arms[a]]


def required_datasets(cfg) -> list[str]:
    """The data the chapter reads (checked by ``python -m sgdtemp run`` before any cell)."""
    return [cfg.dataset]
