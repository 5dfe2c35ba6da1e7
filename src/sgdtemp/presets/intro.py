"""Parameters of the chapter ``intro``: a first look at temperature invariance."""

from sgdtemp.params import Param, ParameterSet, in_range, list_of, positive, positive_int

PARAMETERS = ParameterSet(
    chapter="intro",
    params=[
        Param("temperature", 2e-3, in_range(1e-5, 2e-2),
              "SGD temperature T = lr / batch_size shared by the runs"),
        Param("batch_sizes", [4, 8, 16], list_of(in_range(1, 100, integer=True), min_len=2),
              "batch sizes B run at the same T (lr = T·B)"),
        Param("n_replicas", {"smoke": 400, "default": 2000, "paper": 20000}, positive_int,
              "independent SGD replicas per (lr, batch_size) pair"),
        Param("sde_time", {"smoke": 60.0, "default": 100.0, "paper": 200.0}, positive,
              "continuous time t = (steps)·lr simulated per run"),
    ],
)
