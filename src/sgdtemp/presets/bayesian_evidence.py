"""Parameters of the chapter ``bayesian_evidence``: Laplace evidence of logistic regression
on a binary Fashion-MNIST task, with real and random labels."""

from sgdtemp.params import (Param, ParameterSet, in_range, list_of, optional, positive,
                            text)


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


PARAMETERS = ParameterSet(
    chapter="bayesian_evidence",
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
    ],
    rules=[_two_classes, _grid],
)


def required_datasets(cfg) -> list[str]:
    """The data the chapter reads (checked by ``python -m sgdtemp run`` before any cell)."""
    return ["fashion_mnist"]
