"""Parameters of the chapter ``noise_enhancement``: the effective batch size of noise-enhanced
SGD, measured on least squares against exact discrete-time theory, and the network runs of
its section "On a network".

The network runs (:func:`net_configs`; the chapter and ``python -m sgdtemp sweep --preset
noise_enhancement:<fidelity>`` both use them): a Fashion-MNIST MLP at one learning rate
``net_lr``, ``net_seeds`` seeds each, in three arms:

* ``plain``: plain SGD at every batch size in ``net_batch_sizes``, each for ``net_steps``
  steps (equal steps; the epochs follow: steps·B/N);
* ``enhanced``: noise-enhanced SGD at the largest batch size B_L, with α chosen so that
  B_eff = B_L/(1 + 2α + 2α²) equals each smaller batch size of the list, for ``net_steps``
  steps (each step uses two batches of B_L, so 2·B_L·steps images);
* ``equal_cost``: plain SGD at the smallest and at the largest batch size for as many
  images as an enhanced run (2·B_L·net_steps: equal gradient evaluations).
"""

from __future__ import annotations

from sgdtemp.params import (
    Config, Param, ParameterSet, in_range, list_of, optional, positive_int, text,
)
from sgdtemp.presets import training_run_params

CHAPTER = "noise_enhancement"
N_FULL = 60_000  # Fashion-MNIST training images


def _net_grid_fits(cfg: Config) -> str | None:
    bs, n, steps = list(cfg.net_batch_sizes), cfg.net_n_train, cfg.net_steps
    if bs != sorted(set(bs)):
        return f"net_batch_sizes must be strictly increasing; got {bs!r}."
    if 2 * bs[-1] > n:
        return (f"net_batch_sizes must end at most at net_n_train/2 = {n // 2} (an enhanced step "
                f"draws two batches of the largest); got {bs[-1]}.")
    for b in bs + [2 * bs[-1]]:
        if n % b or (steps * b) % n:
            return (f"net_batch_sizes must each divide net_n_train = {n} (and so must twice the "
                    f"largest), with net_steps × B a multiple of net_n_train, so that every run "
                    f"takes exactly net_steps steps in whole epochs; B = {b} does not fit.")
    return None

PARAMETERS = ParameterSet(
    chapter=CHAPTER,
    params=[
        Param("n_examples", 1000, in_range(100, 100_000, integer=True),
              "training-set size N of the least-squares problem"),
        Param("dim", 4, in_range(1, 16, integer=True), "number of parameters d"),
        Param("lr", 0.2, in_range(1e-3, 1.0), "learning rate η shared by every run"),
        Param("batch_size", 40, in_range(2, 1000, integer=True),
              "batch size B of the noise-enhanced runs (the large batch)"),
        Param("effective_batch_sizes", [20, 16, 10, 8],
              list_of(in_range(1, 1000, integer=True), min_len=2),
              "effective batch sizes B_eff of the enhanced runs; α solves B/(1+2α+2α²) = B_eff"),
        Param("n_draws", {"smoke": 20_000, "default": 100_000, "paper": 1_000_000},
              in_range(1_000, 10_000_000, integer=True),
              "independent gradient draws at fixed θ for the covariance measurement"),
        Param("n_replicas", {"smoke": 400, "default": 1500, "paper": 10_000},
              in_range(20, 1_000_000, integer=True),
              "independent SGD replicas per run"),
        Param("n_steps", {"smoke": 700, "default": 1500, "paper": 5000},
              in_range(100, 1_000_000, integer=True), "steps per stationary run"),
        Param("burn_in", 200, in_range(0, 100_000, integer=True),
              "steps discarded before stationary averages (≫ 1/(η λ_min))"),
        Param("record_every", 5, in_range(1, 1000, integer=True),
              "steps between recorded snapshots of a stationary run"),
        Param("transient_effective_batch", 16, in_range(1, 1000, integer=True),
              "B_eff of the transient (equal-step, equal-evaluation) comparison"),
        Param("transient_steps", 100, in_range(10, 10_000, integer=True),
              "steps of the transient comparison, started away from the minimum"),
        Param("transient_replicas", {"smoke": 1000, "default": 4000, "paper": 20_000},
              in_range(20, 1_000_000, integer=True), "replicas of the transient comparison"),
        # On a network
        Param("data_dir", None, optional(text),
              "folder holding fashion-mnist/*.gz or FashionMNIST/raw (None: $SGDTEMP_DATA)"),
        Param("net_width", {"smoke": 64, "default": 128, "paper": 256}, positive_int,
              "hidden units per layer of the MLP (two hidden layers)"),
        Param("net_n_train", {"smoke": 1280, "default": 12_800, "paper": 51_200},
              in_range(100, N_FULL, integer=True), "Fashion-MNIST training examples (a class-balanced subset)"),
        Param("net_lr", 0.1, in_range(1e-4, 2.0), "learning rate η of every network run"),
        Param("net_batch_sizes", {"smoke": [16, 32, 64], "default": [16, 32, 64, 128, 256],
                                  "paper": [16, 32, 64, 128, 256, 512]},
              list_of(in_range(1, N_FULL, integer=True), min_len=2),
              "plain batch sizes, increasing; the last is the enhanced runs' B and the others their B_eff"),
        Param("net_steps", {"smoke": 80, "default": 2400, "paper": 16_000},
              in_range(1, 10_000_000, integer=True), "SGD steps of every plain and enhanced run"),
        Param("net_seeds", {"smoke": 2, "default": 22, "paper": 22}, in_range(2, 50, integer=True),
              "seeds per network run: net_seed, net_seed + 1, ..."),
        Param("net_seed", 0, in_range(0, 2**31 - 1, integer=True),
              "first seed of the network runs (apart from seed, which sets the toy replicas, so "
              "that re-running the chapter at another seed reads the same committed runs)"),
    ] + training_run_params(CHAPTER),
    rules=[
        lambda c: None if all(b <= c.batch_size for b in c.effective_batch_sizes) else
        f"effective_batch_sizes must not exceed batch_size = {c.batch_size}; "
        f"got {c.effective_batch_sizes}.",
        lambda c: None if c.transient_effective_batch <= c.batch_size else
        f"transient_effective_batch must not exceed batch_size = {c.batch_size}; "
        f"got {c.transient_effective_batch}.",
        lambda c: None if c.batch_size <= c.n_examples else
        f"batch_size must not exceed n_examples = {c.n_examples}; got {c.batch_size}.",
        lambda c: None if c.burn_in + 20 * c.record_every <= c.n_steps else
        "n_steps must exceed burn_in by at least 20 record_every intervals.",
        _net_grid_fits,
    ],
)

NET_ARMS = ("plain", "enhanced", "equal_cost")


def net_configs(cfg: Config) -> dict[str, list[dict]]:
    """The network runs of each arm (see the module docstring), as complete training
    configurations; within an arm the order is batch size (or B_eff), then seed."""
    from sgdtemp.noise_enhancement import alpha_for_effective_batch
    from sgdtemp.train import training_config

    n, steps, bs = cfg.net_n_train, cfg.net_steps, list(cfg.net_batch_sizes)
    big = bs[-1]
    common = dict(dataset="fashion_mnist", data_dir=cfg.data_dir, device=cfg.device, model="mlp",
                  width=cfg.net_width, depth=2, n_train=n, lr=float(cfg.net_lr),
                  eval_train_examples=min(n, 5000), eval_test_examples=10_000)
    seeds = [cfg.net_seed + i for i in range(cfg.net_seeds)]
    cost_epochs = steps * 2 * big // n
    arms = {
        "plain": [dict(common, batch_size=b, epochs=steps * b // n, seed=s) for b in bs for s in seeds],
        "enhanced": [dict(common, batch_size=big, epochs=cost_epochs, seed=s,
                          enhance_alpha=float(f"{alpha_for_effective_batch(big, b):.12g}"))
                     for b in bs[:-1] for s in seeds],
        "equal_cost": [dict(common, batch_size=b, epochs=cost_epochs, seed=s)
                       for b in (bs[0], big) for s in seeds],
    }
    return {k: [training_config(**c) for c in v] for k, v in arms.items()}


def training_configs(cfg: Config) -> list[dict]:
    """Every network run of the chapter, arm by arm (:data:`NET_ARMS`)."""
    arms = net_configs(cfg)
    return [c for a in NET_ARMS for c in arms[a]]


def required_datasets(cfg: Config) -> list[str]:
    """The data the chapter reads (checked by ``python -m sgdtemp run`` before any cell)."""
    return ["fashion_mnist"]
