"""Parameters of the chapter ``power_law``: multiplicative noise, power-law density, escape."""

from sgdtemp.params import Param, ParameterSet, in_range, list_of, positive_int


def _fpt_lr_stable(cfg):
    if cfg.fpt_lr * max(cfg.fpt_dims) >= 1.0:
        return "fpt_lr times the largest of fpt_dims must stay below 1 (the SGD step stays stable)."
    return None


PARAMETERS = ParameterSet(
    chapter="power_law",
    params=[
        Param("n_examples", 20000, in_range(1000, 1_000_000, integer=True),
              "training examples N of the linear regressions (inputs whitened: H = I)"),
        Param("noise_std", 1.0, in_range(0.05, 10.0),
              "label-noise standard deviation σ; the loss floor is L* ≈ σ²/2"),
        Param("phi_batch_sizes", [1, 2, 4], list_of(in_range(1, 64, integer=True)),
              "batch sizes B of the stationary-density runs"),
        Param("phi_lrs", [0.025, 0.05, 0.1, 0.2, 0.4], list_of(in_range(1e-3, 1.0), min_len=4),
              "learning rates η of the stationary-density runs (h = 1, so η = ηh)"),
        Param("phi_replicas", {"smoke": 600, "default": 2000, "paper": 10000}, positive_int,
              "SGD replicas per (B, η) for the stationary density"),
        Param("phi_relaxation_times", {"smoke": 80, "default": 200, "paper": 1000},
              in_range(20, 100_000, integer=True),
              "run length in relaxation times 1/(ηh) (the first 5 are discarded)"),
        Param("fpt_dims", [1, 2, 4, 8], list_of(in_range(1, 32, integer=True), min_len=2),
              "dimensions d of the first-passage experiment"),
        Param("fpt_lr", 0.1, in_range(1e-3, 1.0), "learning rate of the first-passage runs"),
        Param("fpt_batch_size", 1, in_range(1, 64, integer=True),
              "batch size of the first-passage runs"),
        Param("fpt_replicas", {"smoke": 300, "default": 1000, "paper": 4000}, positive_int,
              "SGD replicas per dimension in the first-passage runs"),
        Param("fpt_target_steps", {"smoke": 400, "default": 600, "paper": 5000},
              in_range(50, 1_000_000, integer=True),
              "predicted mean first-passage steps at the highest level c (sets the c range)"),
        Param("n_boot", {"smoke": 200, "default": 400, "paper": 1000}, in_range(50, 10_000, integer=True),
              "bootstrap resamples for the error bars"),
    ],
    rules=[_fpt_lr_stable],
)
