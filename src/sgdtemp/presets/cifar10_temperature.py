"""Parameters of the chapter ``cifar10_temperature``, and its grid of training runs.

The grid: every temperature T crossed with every batch size B (lr = T·B), crossed
with ``n_seeds`` seeds ``seed, seed + 1, ...``. :func:`training_configs` turns the
chapter's parameters into those run configurations; the chapter and
``python -m sgdtemp sweep --preset cifar10_temperature:<fidelity>`` both use it, so
they read and write the same results in the store.

Every run evaluates the test set and the domain-shifted test set on the same fixed
class-balanced subset of ``n_test`` images (so the two gaps differ by the shift alone):
evaluating all 20,000 images after every epoch would cost more CPU time than training.
"""

from __future__ import annotations

from typing import Any

from sgdtemp.presets import training_run_params
from sgdtemp.params import (
    Config, Param, ParameterSet, in_range, list_of, one_of, optional, positive_int, text,
)

CHAPTER = "cifar10_temperature"
N_TEST_FULL = 10_000  # the size of the CIFAR-10 and Fashion-MNIST test sets


def _batch_sizes_fit(cfg: Config) -> str | None:
    if max(cfg.batch_sizes) > cfg.n_train:
        return (f"batch_sizes must each be at most n_train = {cfg.n_train}; "
                f"got {max(cfg.batch_sizes)}.")
    return None


def _curvature_fits(cfg: Config) -> str | None:
    if cfg.curvature_examples > cfg.n_train:
        return (f"curvature_examples must be at most n_train = {cfg.n_train}; "
                f"got {cfg.curvature_examples}.")
    return None


PARAMETERS = ParameterSet(
    chapter=CHAPTER,
    params=[
        Param("data_dir", None, optional(text),
              "folder holding cifar10-jpeg.tar.gz or cifar-10-batches-py (None: $SGDTEMP_DATA)"),
        Param("download", True, one_of(True, False),
              "fetch the data set into data_dir with torchvision when it is missing (online only)"),
        Param("dataset", "cifar10", one_of("cifar10", "fashion_mnist"), "data set"),
        Param("model", {"smoke": "small_cnn", "default": "small_cnn", "paper": "resnet"},
              one_of("small_cnn", "resnet", "mlp"), "network"),
        Param("temperatures",
              {"smoke": [2.5e-4, 1e-3, 4e-3], "default": [2.5e-4, 1e-3, 4e-3],
               "paper": [2.5e-4, 1e-3, 4e-3]},
              list_of(in_range(1e-6, 0.1), min_len=3),
              "temperatures T = lr / batch_size, at least three"),
        Param("batch_sizes", {"smoke": [10, 20, 40], "default": [32, 64, 128],
                              "paper": [64, 128, 256]},
              list_of(in_range(1, 50_000, integer=True), min_len=2),
              "batch sizes B run at every temperature (lr = T·B)"),
        Param("n_seeds", {"smoke": 2, "default": 2, "paper": 3}, in_range(2, 50, integer=True),
              "seeds per (T, B) pair: seed, seed + 1, ..."),
        Param("epochs", {"smoke": 3, "default": 6, "paper": 40}, in_range(1, 1000, integer=True),
              "epochs per run (equal epochs = equal SDE time N·T at every B)"),
        Param("n_train", {"smoke": 500, "default": 10_000, "paper": 50_000},
              in_range(10, 60_000, integer=True), "training examples (a class-balanced subset)"),
        Param("n_test", {"smoke": 250, "default": 2000, "paper": 10_000},
              in_range(10, N_TEST_FULL, integer=True),
              "test images evaluated (a fixed class-balanced subset; the same for the shifted set)"),
        Param("curvature_examples", {"smoke": 64, "default": 512, "paper": 2048},
              positive_int, "training examples the Hessian trace and top eigenvalue are measured on"),
        Param("curvature_probes", {"smoke": 6, "default": 16, "paper": 64},
              in_range(2, 1000, integer=True), "Hutchinson probes for the Hessian trace"),
        Param("curvature_iters", {"smoke": 5, "default": 12, "paper": 30},
              in_range(2, 1000, integer=True), "Lanczos iterations for the top eigenvalue"),
    ] + training_run_params(CHAPTER),
    rules=[_batch_sizes_fit, _curvature_fits],
)


# ---------------------------------------------------------------- runs
def training_configs(cfg: Config) -> list[dict]:
    """The chapter's runs for resolved parameters ``cfg``, as complete configurations of
    ``sgdtemp.train.run_training`` (validated by ``training_config``), in the order
    temperature, batch size, seed (the last fastest)."""
    from sgdtemp.sweep import temperature_grid
    from sgdtemp.train import training_config

    seeds = [cfg.seed + i for i in range(cfg.n_seeds)]
    fixed: dict[str, Any] = dict(
        dataset=cfg.dataset, data_dir=cfg.data_dir, model=cfg.model, epochs=cfg.epochs,
        n_train=cfg.n_train, device=cfg.device, curvature=True,
        curvature_examples=cfg.curvature_examples, curvature_probes=cfg.curvature_probes,
        curvature_iters=cfg.curvature_iters,
        # the same n_test images for the test and the shifted test set, and as many
        # training images for the training loss
        eval_test_examples=cfg.n_test, eval_train_examples=min(cfg.n_train, cfg.n_test),
    )
    return [training_config(**c) for c in temperature_grid(cfg.temperatures, cfg.batch_sizes,
                                                           seed=seeds, **fixed)]


def required_datasets(cfg: Config) -> list[str]:
    """The data the chapter reads (checked by ``python -m sgdtemp run`` before any cell)."""
    return [cfg.dataset]
