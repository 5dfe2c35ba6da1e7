"""Parameters of the chapter ``bayesian_evidence``: Laplace evidence of logistic regression
on a binary Fashion-MNIST task, with real and random labels, and the network runs of its
section "On a network" (Smith & Le's optimal batch size).

The network runs (:func:`net_configs`; the chapter and ``python -m sgdtemp sweep --preset
bayesian_evidence:<fidelity>`` both use them): a one-hidden-layer MLP on class-balanced
Fashion-MNIST subsets, trained with SGD for ``net_epochs`` epochs (equal epochs: equal SDE
time ε·steps = ε·E·N/B at equal noise scale g = εN/B). For every learning rate ε in
``net_lrs`` and training-set size N in ``net_n_trains`` the batch size is scanned as
B = εN/g over the noise scales g in ``net_noise_scales``, ``net_seeds`` seeds each (a g
whose B would be below one example is left out of that cell's scan: the scan of a cell ends
at g = εN); a momentum arm repeats the scan at the smallest ε and the middle N with
momentum m = ``net_momentum`` and B = εN/((1 − m)g); a noise-scale arm repeats the scans
at ε = ``net_noise_scale_lr`` for one more seed, ``net_noise_scale_seed`` (outside every
other arm, so that the runs that locate B_opt are not the ones that measure B_simple), and
measures the gradient noise scale B_simple = tr Σ/|G|² of each run's training set every
``net_noise_scale_every`` epochs.
"""

from __future__ import annotations

from sgdtemp.params import (Config, Param, ParameterSet, in_range, list_of, optional, positive,
                            positive_int, text)
from sgdtemp.presets import training_run_params

CHAPTER = "bayesian_evidence"
N_FULL = 60_000  # Fashion-MNIST training images


def _two_classes(cfg):
    c = cfg.classes
    if len(c) != 2 or c[0] == c[1]:
        return "classes must be two different Fashion-MNIST labels between 0 and 9."
    return None


def _grid(cfg):
    lam = cfg.prior_precisions
    if list(lam) != sorted(lam) or len(set(lam)) != len(lam):
        return "prior_precisions must be strictly increasing."
    return None


def _batch(eps: float, n: int, g: float, momentum: float = 0.0) -> float:
    """B = εN/((1 − m)g), before rounding."""
    return eps * n / ((1.0 - momentum) * g)


def momentum_cell(cfg: Config) -> tuple[float, int]:
    """(ε, N) of the momentum arm: the smallest learning rate and the middle training-set size."""
    ns = list(cfg.net_n_trains)
    return float(cfg.net_lrs[0]), int(ns[len(ns) // 2])


def _net_grid_fits(cfg: Config) -> str | None:
    for name in ("net_lrs", "net_n_trains", "net_noise_scales"):
        v = list(cfg[name])
        if v != sorted(set(v)):
            return f"{name} must be strictly increasing; got {v!r}."
    cells = [(eps, n, 0.0) for eps in cfg.net_lrs for n in cfg.net_n_trains]
    cells.append((*momentum_cell(cfg), cfg.net_momentum))
    for eps, n, m in cells:
        for g in cfg.net_noise_scales:
            b = _batch(eps, n, g, m)
            if b < 1 - 1e-9:  # beyond the end of this cell's scan: left out
                continue
            if abs(b - round(b)) > 1e-9 * b or not 1 <= round(b) <= n:
                return (f"every batch size εN/((1 − m)g) must be a whole number between 1 and N "
                        f"(or below 1: left out); "
                        f"ε = {eps:g}, N = {n}, g = {g:g}, m = {m:g} give {b:g} (choose "
                        f"net_lrs, net_n_trains, net_noise_scales and net_momentum to fit).")
    return None


def _momentum_seeds(cfg: Config) -> str | None:
    if cfg.net_momentum_seeds < cfg.net_seeds:
        return (f"net_momentum_seeds must be at least net_seeds = {cfg.net_seeds}; "
                f"got {cfg.net_momentum_seeds}.")
    return None


def _noise_scale_arm(cfg: Config) -> str | None:
    if cfg.net_noise_scale_lr not in list(cfg.net_lrs):
        return (f"net_noise_scale_lr must be one of net_lrs {list(cfg.net_lrs)!r}; "
                f"got {cfg.net_noise_scale_lr!r}.")
    used = max(cfg.net_seeds, cfg.net_momentum_seeds)
    if cfg.net_seed <= cfg.net_noise_scale_seed < cfg.net_seed + used:
        return (f"net_noise_scale_seed must lie outside the other arms' seeds "
                f"{cfg.net_seed}…{cfg.net_seed + used - 1}; got {cfg.net_noise_scale_seed}.")
    return None


PARAMETERS = ParameterSet(
    chapter=CHAPTER,
    params=[
        Param("classes", [5, 7], list_of(in_range(0, 9, integer=True), min_len=2),
              "the two Fashion-MNIST classes (5 sandal, 7 sneaker; 0 T-shirt, 6 shirt)"),
        Param("pool", {"smoke": 2, "default": 2, "paper": 1}, in_range(1, 4, integer=True),
              "average-pooling factor of the 28×28 images (2 gives 14×14 = 196 inputs)"),
        Param("n_train", {"smoke": 200, "default": 200, "paper": 800},
              in_range(20, 12000, integer=True), "training examples per subset"),
        Param("n_subsets", {"smoke": 4, "default": 10, "paper": 10}, in_range(3, 1000, integer=True),
              "independent training subsets (and random labellings): the error bars"),
        Param("prior_precisions",
              {"smoke": [1e-4, 1e-2, 0.316, 1.0, 3.16, 10.0, 31.6, 1e3],
               "default": [1e-4, 1e-3, 1e-2, 0.1, 0.316, 1.0, 3.16, 10.0, 31.6, 100.0, 1e3],
               "paper": [1e-4, 1e-3, 1e-2, 0.1, 0.316, 1.0, 3.16, 10.0, 31.6, 100.0, 1e3]},
              list_of(positive, min_len=4),
              "prior precisions λ (prior N(0, I/λ)), increasing; half a decade apart near the optimum"),
        Param("n_memorize", 300, in_range(20, 12000, integer=True),
              "training examples per subset of the capacity test (between d and 2d: random labels "
              "are then separable by Cover's theorem without being a mere interpolation)"),
        Param("reparam_spread", 10.0, in_range(1.0, 1e4),
              "the reparametrisation θ = Aθ' scales directions by factors in [1/spread, spread]"),
        Param("data_dir", None, optional(text),
              "folder holding fashion-mnist/*-ubyte.gz (None: $SGDTEMP_DATA)"),
        # On a network
        Param("net_width", {"smoke": 32, "default": 256, "paper": 800}, positive_int,
              "hidden units of the one-hidden-layer MLP (the paper: 800)"),
        Param("net_lrs", {"smoke": [0.025, 0.05, 0.1], "default": [0.025, 0.05, 0.1],
                          "paper": [0.025, 0.05, 0.1, 0.2]},
              list_of(in_range(1e-4, 2.0), min_len=2), "learning rates ε, increasing"),
        Param("net_n_trains", {"smoke": [320, 640, 1280], "default": [1280, 2560, 5120],
                               "paper": [2560, 5120, 10240, 20480]},
              list_of(in_range(10, N_FULL, integer=True), min_len=2),
              "training-set sizes N (class-balanced subsets), increasing"),
        Param("net_noise_scales", {"smoke": [0.5, 2.0, 8.0],
                                   "default": [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
                                   "paper": [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]},
              list_of(positive, min_len=3),
              "noise scales g = εN/B of each batch-size scan, increasing (B = εN/g; a g with "
              "B < 1 is left out of its cell)"),
        Param("net_momentum", 0.75, in_range(0.0, 0.99),
              "momentum m of the momentum arm (g = εN/(B(1 − m))); must be below 1"),
        Param("net_epochs", {"smoke": 1, "default": 20, "paper": 60}, in_range(1, 10_000, integer=True),
              "epochs of every network run"),
        Param("net_seeds", {"smoke": 2, "default": 6, "paper": 6}, in_range(2, 50, integer=True),
              "seeds per network run: net_seed, net_seed + 1, ..."),
        # The momentum shift compares two cells' optima: its seeds were planned from its
        # power on the 6-seed runs (stats.seeds_to_detect: 12), beyond the scan's.
        Param("net_momentum_seeds", {"smoke": 2, "default": 20, "paper": 6},
              in_range(2, 50, integer=True),
              "seeds of the momentum arm and of the scan cell it is compared with (at least "
              "net_seeds; the extra ones are the arm momentum_base, outside the scan)"),
        Param("net_noise_scale_lr", {"smoke": 0.1, "default": 0.1, "paper": 0.1}, in_range(1e-4, 2.0),
              "learning rate ε of the noise-scale arm (one of net_lrs: its cells' scans are "
              "repeated with B_simple measured)"),
        Param("net_noise_scale_seed", 100, in_range(0, 2**31 - 1, integer=True),
              "the one seed of the noise-scale arm (outside the other arms' seeds)"),
        Param("net_noise_scale_every", {"smoke": 1, "default": 5, "paper": 10},
              in_range(1, 10_000, integer=True),
              "epochs between measurements of B_simple in the noise-scale arm (and at the last)"),
        Param("net_seed", 0, in_range(0, 2**31 - 1, integer=True),
              "first seed of the network runs (apart from seed, which sets the toy replicas, so "
              "that re-running the chapter at another seed reads the same committed runs)"),
    ] + training_run_params(CHAPTER),
    rules=[_two_classes, _grid, _net_grid_fits, _momentum_seeds, _noise_scale_arm],
)

NET_ARMS = ("scan", "momentum", "momentum_base", "noise_scale")


def net_configs(cfg: Config) -> dict[str, list[dict]]:
    """The network runs: ``scan`` in the order ε, N, g, seed (the last fastest);
    ``momentum`` in the order g, seed (``net_momentum_seeds`` seeds); ``momentum_base``, the
    scan's cell at the momentum arm's (ε, N) without momentum for the seeds beyond
    ``net_seeds`` (so that the momentum comparison has as many seeds on both sides while
    every other claim reads the scan alone); ``noise_scale``, the scans at ε =
    ``net_noise_scale_lr`` in the order N, g for the seed ``net_noise_scale_seed``, with
    B_simple measured on min(N, 2048) of the run's training examples every
    ``net_noise_scale_every`` epochs; as complete training configurations."""
    from sgdtemp.train import training_config

    seeds = [cfg.net_seed + i for i in range(cfg.net_seeds)]
    m_seeds = [cfg.net_seed + i for i in range(cfg.net_momentum_seeds)]

    def run(eps, n, g, m, s, **extra):
        # Every epoch evaluates fixed subsets of 5,000 training and 5,000 test images: with
        # 20 epochs of at most 5,120 images, evaluating more would cost more than training.
        return training_config(
            dataset="fashion_mnist", data_dir=cfg.data_dir, device=cfg.device, model="mlp",
            width=cfg.net_width, depth=1, n_train=n, lr=float(eps), momentum=float(m),
            batch_size=round(_batch(eps, n, g, m)), epochs=cfg.net_epochs, seed=s,
            eval_train_examples=min(n, 5000), eval_test_examples=5000, **extra)

    eps_m, n_m = momentum_cell(cfg)
    return {
        "scan": [run(e, n, g, 0.0, s) for e in cfg.net_lrs for n in cfg.net_n_trains
                 for g in cfg.net_noise_scales if in_scan(e, n, g) for s in seeds],
        "momentum": [run(eps_m, n_m, g, cfg.net_momentum, s)
                     for g in cfg.net_noise_scales if in_scan(eps_m, n_m, g, cfg.net_momentum)
                     for s in m_seeds],
        "momentum_base": [run(eps_m, n_m, g, 0.0, s) for g in cfg.net_noise_scales
                          if in_scan(eps_m, n_m, g) for s in m_seeds[len(seeds):]],
        "noise_scale": [run(cfg.net_noise_scale_lr, n, g, 0.0, cfg.net_noise_scale_seed,
                            noise_scale_every=cfg.net_noise_scale_every, curvature_examples=min(n, 2048))
                        for n in cfg.net_n_trains for g in cfg.net_noise_scales
                        if in_scan(cfg.net_noise_scale_lr, n, g)],
    }


def in_scan(eps: float, n: int, g: float, momentum: float = 0.0) -> bool:
    """Whether noise scale g is in the scan of cell (ε, N): its batch εN/((1 − m)g) is at
    least one example."""
    return _batch(eps, n, g, momentum) >= 1 - 1e-9


def training_configs(cfg: Config) -> list[dict]:
    """Every network run of the chapter: the scans, then the momentum arm and its base."""
    arms = net_configs(cfg)
    return [c for a in NET_ARMS for c in arms[a]]


def required_datasets(cfg) -> list[str]:
    """The data the chapter reads (checked by ``python -m sgdtemp run`` before any cell)."""
    return ["fashion_mnist"]
