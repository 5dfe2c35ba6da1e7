"""Parameters of the chapter ``two_minima``: a sharp deep minimum against a wide shallow one."""

from sgdtemp.params import (Param, ParameterSet, in_range, list_of, positive, positive_int)


def _batch(lr: float, temperature: float) -> int:
    """Batch size that realises temperature T at learning rate about ``lr``: round(lr/T)."""
    return int(round(lr / temperature))


def _scan_batches(cfg) -> "str | None":
    for t in cfg.temperatures:
        b = _batch(cfg.lr, t)
        if b < 1:
            return (f"lr must be at least half of every temperature (the batch size is "
                    f"round(lr/T)); got lr {cfg.lr!r} and temperature {t!r}.")
        if b > cfg.n_train:
            return (f"n_train must be at least every batch size round(lr/T); temperature {t!r} "
                    f"needs {b} examples but n_train is {cfg.n_train}.")
    return None


def _escape_batches(cfg) -> "str | None":
    for t in cfg.escape_temperatures:
        b = _batch(cfg.escape_lr, t)
        if not 1 <= b <= cfg.n_train:
            return (f"escape_lr must make every batch size round(escape_lr/T) between 1 and "
                    f"n_train; temperature {t!r} gives {b}.")
    return None


def _invariance_batches(cfg) -> "str | None":
    bs = list(cfg.invariance_batch_sizes) + [cfg.breaking_batch_size]
    if max(bs) > cfg.n_train:
        return (f"invariance_batch_sizes and breaking_batch_size must not exceed n_train "
                f"({cfg.n_train}); got {max(bs)}.")
    if max(bs + list(cfg.onset_batch_sizes)) > cfg.n_train:
        return (f"onset_batch_sizes must not exceed n_train ({cfg.n_train}); "
                f"got {max(cfg.onset_batch_sizes)}.")
    if set(cfg.onset_batch_sizes) & set(bs):
        return "onset_batch_sizes must differ from the invariance and breaking batch sizes."
    if max(cfg.onset_batch_sizes) >= cfg.breaking_batch_size:
        return "onset_batch_sizes must be smaller than breaking_batch_size."
    if cfg.breaking_batch_size <= max(cfg.invariance_batch_sizes):
        return ("breaking_batch_size must be larger than every invariance batch size "
                "(it is the large-learning-rate run).")
    if len(set(cfg.invariance_batch_sizes)) != len(cfg.invariance_batch_sizes):
        return "invariance_batch_sizes must be distinct."
    return None


PARAMETERS = ParameterSet(
    chapter="two_minima",
    params=[
        Param("n_train", 500_000, in_range(10, 10**7, integer=True),
              "training examples (x_i, y_i)"),
        Param("n_test", 500_000, in_range(10, 10**7, integer=True),
              "examples in each test set (same distribution, and domain-shifted)"),
        Param("domain_shift", 0.6, in_range(-2.0, 2.0),
              "shift δ of the data location x in the domain-shifted test set"),
        Param("lr", 0.016, in_range(1e-5, 1.0),
              "learning rate of the temperature scan; each T uses batch_size = round(lr/T), lr = T·batch_size"),
        Param("temperatures", [0.00025, 0.0005, 0.001, 0.002], list_of(in_range(1e-5, 0.05), min_len=3),
              "temperatures T = lr/batch_size of the occupancy and test-loss scan"),
        Param("n_replicas", {"smoke": 600, "default": 1500, "paper": 6000}, positive_int,
              "independent SGD replicas per temperature"),
        Param("relaxation_times", {"smoke": 8.0, "default": 12.0, "paper": 30.0}, in_range(4.0, 1000.0),
              "length of each stationary run in predicted relaxation times (the first 3 are burn-in)"),
        Param("invariance_temperature", 0.001, in_range(1e-5, 0.05),
              "temperature of the invariance test"),
        Param("invariance_batch_sizes", [2, 8, 32], list_of(positive_int, min_len=2),
              "batch sizes run at the invariance temperature (lr = T·batch_size)"),
        Param("onset_batch_sizes", [80, 160], list_of(positive_int, min_len=1),
              "batch sizes between the invariance ones and breaking_batch_size, whose lr = T·batch_size "
              "resolves how the occupancy departs from invariance at order lr"),
        Param("breaking_batch_size", 320, positive_int,
              "a batch size whose lr = T·batch_size is large enough to break invariance"),
        Param("n_replicas_invariance", {"smoke": 800, "default": 2000, "paper": 8000}, positive_int,
              "replicas per (lr, batch_size) pair of the invariance test"),
        Param("escape_lr", 0.002, in_range(1e-5, 1.0),
              "learning rate of the escape runs (batch_size = round(escape_lr/T))"),
        Param("escape_temperatures", {"smoke": [0.001, 0.002], "default": [0.0005, 0.001, 0.002],
                                      "paper": [0.0005, 0.001, 0.002]},
              list_of(in_range(1e-5, 0.05), min_len=1),
              "temperatures at which escape times from the sharp minimum are measured"),
        Param("n_replicas_escape", {"smoke": 400, "default": 1000, "paper": 4000}, positive_int,
              "replicas per escape temperature"),
        Param("grid_points", 2000, in_range(200, 100_000, integer=True),
              "points of the θ grid for the exact densities and integrals"),
    ],
    rules=[_scan_batches, _escape_batches, _invariance_batches],
)
