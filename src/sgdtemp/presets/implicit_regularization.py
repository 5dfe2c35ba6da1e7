"""Parameters of the chapter ``implicit_regularization``: the modified loss of shuffled SGD,
checked on linear and logistic regression by averaging one epoch over many orderings."""

from sgdtemp.params import Param, ParameterSet, in_range, list_of, positive_int

PARAMETERS = ParameterSet(
    chapter="implicit_regularization",
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
    ],
    rules=[
        lambda c: None if c.n_examples % c.batch_size == 0 and c.batch_size < c.n_examples else
        f"batch_size must divide n_examples = {c.n_examples} and be smaller; got {c.batch_size}.",
        lambda c: None if all(c.n_examples % b == 0 and b < c.n_examples
                              for b in c.scaling_batch_sizes) else
        f"scaling_batch_sizes must divide n_examples = {c.n_examples} and be smaller; "
        f"got {c.scaling_batch_sizes}.",
        lambda c: None if c.n_orderings >= 2 * c.n_groups and c.scaling_orderings >= 2 * c.n_groups
        else "n_orderings and scaling_orderings must be at least twice n_groups.",
    ],
)
