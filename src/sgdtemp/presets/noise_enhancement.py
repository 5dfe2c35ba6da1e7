"""Parameters of the chapter ``noise_enhancement``: the effective batch size of noise-enhanced
SGD, measured on least squares against exact discrete-time theory."""

from sgdtemp.params import Param, ParameterSet, in_range, list_of

PARAMETERS = ParameterSet(
    chapter="noise_enhancement",
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
    ],
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
    ],
)
