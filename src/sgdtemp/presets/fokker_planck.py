"""Parameters of the chapter ``fokker_planck``: SGD → SDE → Fokker–Planck, checked numerically."""

from sgdtemp.params import Param, ParameterSet, in_range, list_of, positive, positive_int


def _batch_fits(cfg):
    if cfg.batch_size >= cfg.n_examples:
        return (f"batch_size must be smaller than n_examples ({cfg.n_examples}) so that "
                f"minibatches carry noise; got {cfg.batch_size}.")
    return None


PARAMETERS = ParameterSet(
    chapter="fokker_planck",
    params=[
        Param("lr", 0.01, in_range(1e-4, 0.05),
              "learning rate η of the state-dependent-noise examples (1-D and 2-D)"),
        Param("batch_size", 2, in_range(1, 64, integer=True),
              "batch size B of those examples (minibatches drawn with replacement)"),
        Param("n_examples", 8, in_range(4, 4096, integer=True),
              "examples N in the finite sums of the noise examples (a multiple of 4)"),
        Param("noise_scale", 0.2, in_range(0.01, 1.0),
              "½·T·s², the diffusion D at the noise minimum (units θ² per unit time)"),
        Param("n_replicas", {"smoke": 8000, "default": 40000, "paper": 200000}, positive_int,
              "independent SGD replicas per simulation"),
        Param("sde_time", {"smoke": 30.0, "default": 40.0, "paper": 80.0}, positive,
              "continuous time t = steps·lr simulated by the state-dependent examples"),
        Param("lr_curvatures", [0.05, 0.1, 0.2, 0.4, 0.8, 1.2, 1.6],
              list_of(in_range(0.005, 1.99), min_len=3),
              "values of η·h at which the discrete-time variance is measured (SGD diverges at ηh ≥ 2)"),
        Param("quadratic_replicas", {"smoke": 2000, "default": 8000, "paper": 40000}, positive_int,
              "replicas per learning rate in the discrete-versus-continuous comparison "
              "(half as many in the linear-regression example)"),
        Param("grid_points", {"smoke": 801, "default": 1601, "paper": 6401}, in_range(101, 100001, integer=True),
              "points of the 1-D Fokker–Planck grid"),
        Param("grid_points_2d", {"smoke": 121, "default": 181, "paper": 301}, in_range(31, 1001, integer=True),
              "points per axis of the 2-D Fokker–Planck grid"),
        Param("n_bins", 40, in_range(5, 1000, integer=True),
              "equiprobable bins of the histogram test"),
        Param("temperature", 3e-3, in_range(1e-5, 1e-2),
              "temperature T = lr/batch_size of the linear-regression example"),
    ],
    rules=[_batch_fits,
           lambda cfg: None if cfg.n_examples % 4 == 0 else
           f"n_examples must be a multiple of 4 (balanced sign patterns); got {cfg.n_examples}."],
)
