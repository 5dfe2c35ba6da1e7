"""Parameters of the chapter ``implicit_regularization``: the modified loss of shuffled SGD,
checked on linear and logistic regression by averaging one epoch over many orderings, and
the network runs of its section "On a network".

The network runs (:func:`training_configs`; the chapter and ``python -m sgdtemp sweep
--preset implicit_regularization:<fidelity>`` both use them, so they read and write the same
results): a Fashion-MNIST MLP trained with plain SGD at every learning rate in ``net_lrs``,
and at the small learning rate ``net_reg_lr`` with the explicit regularizer
λ‖∇L̂_B‖² added to every minibatch loss, for every λ in ``net_reg_strengths``
(Smith et al.'s implicit regularizer of a run at learning rate η has λ = η/4), each with
``net_seeds`` seeds.
"""

from __future__ import annotations

from sgdtemp.params import (
    Config, Param, ParameterSet, in_range, list_of, optional, positive, positive_int, text,
)
from sgdtemp.presets import training_run_params

CHAPTER = "implicit_regularization"
N_FULL = 60_000  # Fashion-MNIST training images

def _net_grid_fits(cfg: Config) -> str | None:
    if cfg.net_batch_size > cfg.net_n_train:
        return f"net_batch_size must be at most net_n_train = {cfg.net_n_train}; got {cfg.net_batch_size}."
    if cfg.net_reg_lr not in cfg.net_lrs:
        return (f"net_reg_lr must be one of net_lrs (the plain run it is compared with); "
                f"got {cfg.net_reg_lr!r}.")
    if cfg.net_reg_seeds < cfg.net_seeds:
        return f"net_reg_seeds must be at least net_seeds = {cfg.net_seeds}; got {cfg.net_reg_seeds}."
    if list(cfg.net_lrs) != sorted(set(cfg.net_lrs)):
        return f"net_lrs must be strictly increasing; got {cfg.net_lrs!r}."
    return None


_lr = in_range(1e-5, 10.0)
PARAMETERS = ParameterSet(
    chapter=CHAPTER,
    params=[
        Param("n_examples", 32, in_range(8, 256, integer=True),
              "training-set size N of both regression problems"),
        Param("dim", 4, in_range(1, 16, integer=True), "number of parameters d"),
        Param("batch_size", 4, in_range(1, 128, integer=True),
              "minibatch size B of the order-of-error experiment (B must divide N)"),
        Param("flow_time_max", 0.2, in_range(0.01, 1.0),
              "largest epoch length m·lr·λ_max(H) (dimensionless); sets the largest lr"),
        Param("lr_span", {"smoke": 4.0, "default": 6.0, "paper": 8.0}, in_range(2.0, 100.0),
              "ratio of the largest to the smallest learning rate of the fit"),
        Param("n_lrs", {"smoke": 8, "default": 10, "paper": 12}, in_range(6, 40, integer=True),
              "number of learning rates, log-spaced, in the fit of the error order"),
        Param("n_orderings", {"smoke": 200_000, "default": 400_000, "paper": 2_000_000},
              in_range(10_000, 10_000_000, integer=True),
              "random orderings (epochs) averaged per learning rate"),
        Param("n_groups", 20, in_range(5, 200, integer=True),
              "independent groups of orderings, for jackknife errors"),
        Param("scaling_batch_sizes", [2, 4, 8], list_of(in_range(1, 128, integer=True), min_len=2),
              "batch sizes of the ε/B scaling experiment (each must divide N)"),
        Param("scaling_temperature", 0.004, in_range(1e-4, 0.05),
              "largest lr/B of the scaling experiment; halved n_scaling_lrs − 1 times"),
        Param("n_scaling_lrs", 4, in_range(3, 10, integer=True),
              "temperatures per batch size in the scaling experiment"),
        Param("scaling_orderings", {"smoke": 40_000, "default": 200_000, "paper": 1_000_000},
              in_range(10_000, 10_000_000, integer=True),
              "random orderings per point of the scaling experiment"),
        # On a network
        Param("data_dir", None, optional(text),
              "folder holding fashion-mnist/*.gz or FashionMNIST/raw (None: $SGDTEMP_DATA)"),
        Param("net_width", {"smoke": 64, "default": 256, "paper": 256}, positive_int,
              "hidden units per layer of the MLP (two hidden layers)"),
        Param("net_n_train", {"smoke": 1000, "default": 5000, "paper": 60_000},
              in_range(100, N_FULL, integer=True), "Fashion-MNIST training examples (a class-balanced subset)"),
        Param("net_batch_size", {"smoke": 50, "default": 50, "paper": 128},
              in_range(1, N_FULL, integer=True), "batch size B of every network run"),
        Param("net_lrs", {"smoke": [0.02, 0.08, 0.32],
                          "default": [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.381, 0.453, 0.538, 0.64,
                                      1.28],
                          "paper": [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64]},
              list_of(_lr, min_len=3), "learning rates of the plain-SGD scan, increasing"),
        Param("net_epochs", {"smoke": 3, "default": 100, "paper": 200}, in_range(1, 10_000, integer=True),
              "epochs of every network run"),
        Param("net_seeds", {"smoke": 2, "default": 6, "paper": 8}, in_range(2, 50, integer=True),
              "seeds per network run: net_seed, net_seed + 1, ..."),
        Param("net_seed", 0, in_range(0, 2**31 - 1, integer=True),
              "first seed of the network runs (apart from seed, which sets the toy replicas, so "
              "that re-running the chapter at another seed reads the same committed runs)"),
        Param("net_reg_seeds", {"smoke": 3, "default": 12, "paper": 12}, in_range(2, 50, integer=True),
              "seeds of the regularized runs and of the plain run at net_reg_lr they are compared "
              "with (at least net_seeds: the cells the gap-closing claims are judged on)"),
        Param("net_reg_lr", {"smoke": 0.02, "default": 0.02, "paper": 0.01}, _lr,
              "the small learning rate the explicit regularizer is added at (one of net_lrs)"),
        Param("net_reg_strengths", {"smoke": [0.02], "default": [0.02, 0.08],
                                    "paper": [0.01, 0.04, 0.16]},
              list_of(positive, min_len=1),
              "strengths λ of the explicit regularizer λ‖∇L̂_B‖² (λ = η′/4 mimics learning rate η′)"),
    ] + training_run_params(CHAPTER),
    rules=[
        lambda c: None if c.n_examples % c.batch_size == 0 and c.batch_size < c.n_examples else
        f"batch_size must divide n_examples = {c.n_examples} and be smaller; got {c.batch_size}.",
        lambda c: None if all(c.n_examples % b == 0 and b < c.n_examples
                              for b in c.scaling_batch_sizes) else
        f"scaling_batch_sizes must divide n_examples = {c.n_examples} and be smaller; "
        f"got {c.scaling_batch_sizes}.",
        lambda c: None if c.n_orderings >= 2 * c.n_groups and c.scaling_orderings >= 2 * c.n_groups
        else "n_orderings and scaling_orderings must be at least twice n_groups.",
        _net_grid_fits,
    ],
)


def _common(cfg: Config) -> dict:
    n = cfg.net_n_train
    return dict(dataset="fashion_mnist", data_dir=cfg.data_dir, device=cfg.device, model="mlp",
                width=cfg.net_width, depth=2, n_train=n, batch_size=cfg.net_batch_size,
                epochs=cfg.net_epochs, eval_train_examples=min(n, 10_000), eval_test_examples=10_000)


def net_configs(cfg: Config) -> dict[str, list[dict]]:
    """The network runs: ``plain`` (lr in ``net_lrs``, seed in ``net_seeds``; the last
    fastest; then the extra seeds up to ``net_reg_seeds`` at every lr of
    :func:`compared_lrs`) and
    ``regularized`` (λ in ``net_reg_strengths``, seed in ``net_reg_seeds``), as complete
    training configurations."""
    from sgdtemp.train import training_config

    seeds = [cfg.net_seed + i for i in range(cfg.net_seeds)]
    reg_seeds = [cfg.net_seed + i for i in range(cfg.net_reg_seeds)]
    plain = [dict(_common(cfg), lr=lr, seed=s) for lr in cfg.net_lrs for s in seeds]
    plain += [dict(_common(cfg), lr=lr, seed=s) for lr in compared_lrs(cfg)
              for s in reg_seeds[len(seeds):]]
    reg = [dict(_common(cfg), lr=cfg.net_reg_lr, grad_penalty=float(lam), seed=s)
           for lam in cfg.net_reg_strengths for s in reg_seeds]
    return {"plain": [training_config(**c) for c in plain],
            "regularized": [training_config(**c) for c in reg]}


def compared_lrs(cfg: Config) -> list[float]:
    """The plain cells the regularized runs are compared with, which get ``net_reg_seeds``
    seeds: ``net_reg_lr`` (the baseline) and, for each λ, the learning rate ε′ = 4λ that the
    regularizer mimics (λ = ε′/4), where it is on the grid."""
    targets = [lr for lr in cfg.net_lrs if any(abs(lr - 4 * lam) < 1e-9 * lr for lam in cfg.net_reg_strengths)]
    return [cfg.net_reg_lr] + [lr for lr in targets if lr != cfg.net_reg_lr]


def training_configs(cfg: Config) -> list[dict]:
    """Every network run of the chapter: the plain scan, then the regularized runs."""
    arms = net_configs(cfg)
    return arms["plain"] + arms["regularized"]


def required_datasets(cfg: Config) -> list[str]:
    """The data the chapter reads (checked by ``python -m sgdtemp run`` before any cell)."""
    return ["fashion_mnist"]
