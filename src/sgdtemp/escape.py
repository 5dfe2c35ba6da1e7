"""First-passage times of minibatch SGD, simulated with many replicas at once.

Every replica starts at ``theta0`` and runs plain minibatch SGD; its first-passage time
is the first step k at which it has crossed ``target`` (θ ≥ target when the target lies
above the start, θ ≤ target when below), reported in SDE time t = k·η so that it can be
compared with the mean first-passage time of the diffusion approximation
(:func:`sgdtemp.fokker_planck.mean_first_passage_time_1d`) whatever the learning rate.

Replicas that have arrived are dropped from the batch, so the cost follows the survivors,
not the slowest replica. Replicas still out after ``max_steps`` are *censored*: their
time is reported as ``inf`` and counted, never silently averaged in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdtemp.dynamics import stochastic_gradient
from sgdtemp.landscapes import FiniteSumProblem


@dataclass
class FirstPassage:
    """Result of :func:`first_passage_times`.

    ``times``: (R,) SDE times t = k·η of arrival (``inf`` where censored);
    ``steps``: (R,) step counts (−1 where censored); ``lr``: η used.
    """

    times: np.ndarray
    steps: np.ndarray
    lr: float

    @property
    def censored(self) -> int:
        """Number of replicas that had not arrived by the last step."""
        return int(np.sum(self.steps < 0))

    def mean_and_stderr(self) -> tuple[float, float]:
        """Mean first-passage time and its standard error s/sqrt(R) over replicas
        (SDE time units). Raises if any replica is censored: the mean would be biased."""
        if self.censored:
            raise ValueError(f"{self.censored} replicas did not arrive: raise max_steps")
        t = self.times
        return float(t.mean()), float(t.std(ddof=1) / np.sqrt(t.size))


def first_passage_times(problem: FiniteSumProblem, theta0: float, target: float, lr: float,
                        batch_size: int, n_replicas: int, max_steps: int, *,
                        replacement: bool = True, seed: int = 0) -> FirstPassage:
    """First-passage times of 1-D SGD from ``theta0`` across ``target``.

    θ_{k+1} = θ_k − η ĝ_k with ĝ_k a minibatch gradient of ``batch_size`` examples
    (:func:`sgdtemp.dynamics.stochastic_gradient`), for ``n_replicas`` independent
    replicas. Returns SDE times t = k·η (k = step of first crossing). Seeded.
    """
    if problem.dim != 1:
        raise ValueError("first_passage_times is for 1-D problems")
    if lr <= 0 or not 1 <= batch_size <= problem.n_examples or n_replicas < 1 or max_steps < 1:
        raise ValueError("need lr > 0, 1 <= batch_size <= n_examples, n_replicas >= 1, max_steps >= 1")
    up = target > theta0
    rng = np.random.default_rng(seed)
    theta = np.full((n_replicas, 1), float(theta0))
    alive = np.arange(n_replicas)  # indices of replicas still travelling
    steps = np.full(n_replicas, -1, dtype=np.int64)
    for k in range(1, max_steps + 1):
        theta -= lr * stochastic_gradient(problem, theta, batch_size, rng, replacement=replacement)
        arrived = theta[:, 0] >= target if up else theta[:, 0] <= target
        if arrived.any():
            steps[alive[arrived]] = k
            keep = ~arrived
            alive, theta = alive[keep], theta[keep]
            if alive.size == 0:
                break
    times = np.where(steps >= 0, steps * lr, np.inf)
    return FirstPassage(times, steps, float(lr))
