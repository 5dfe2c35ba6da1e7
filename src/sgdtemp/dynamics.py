"""Many-replica minibatch SGD on a finite-sum problem, vectorized over replicas.

One step for all R replicas at once:

    θ_{k+1} = θ_k − η ĝ_k,   ĝ_k = (1/B) Σ_{i∈B_k} ∇ℓ_i(θ_k)

with each replica drawing its own minibatch B_k, with or without replacement.
Noise enhancement (Mori & Ueda) replaces ĝ by (1+α) ĝ_{B1} − α ĝ_{B2} for two
independent minibatches: unbiased, covariance (1 + 2α + 2α²) times one minibatch's.

:func:`simulate_sgd` and :func:`euler_maruyama` share one replica loop (divergence,
freezing, recording); each supplies only its update rule.

Everything is seeded: the same arguments give the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from sgdtemp.landscapes import FiniteSumProblem


def minibatch_indices(rng: np.random.Generator, n_examples: int, n_replicas: int,
                      batch_size: int, replacement: bool = False) -> np.ndarray:
    """Independent minibatch indices for each replica, shape ``(n_replicas, batch_size)``.

    Without replacement each row is a simple random sample of distinct examples.
    """
    if replacement:
        return rng.integers(0, n_examples, size=(n_replicas, batch_size))
    if batch_size == n_examples:
        return np.broadcast_to(np.arange(n_examples), (n_replicas, n_examples))
    if batch_size * (batch_size - 1) <= 2 * n_examples:
        # Sparse case: draw with replacement and redraw the rows with a repeat; accepted
        # rows are uniform simple random samples (rejection sampling). A row is accepted
        # with probability ≈ exp(−B(B−1)/2N) ≥ 1/e here, so few rounds are needed, and
        # this is far cheaper than ranking all N keys per replica. Only redrawn rows are
        # checked again.
        idx = rng.integers(0, n_examples, size=(n_replicas, batch_size))
        rows = np.arange(n_replicas)
        while True:
            s = np.sort(idx[rows], axis=1)
            rows = rows[(s[:, 1:] == s[:, :-1]).any(axis=1)]
            if rows.size == 0:
                return idx
            idx[rows] = rng.integers(0, n_examples, size=(rows.size, batch_size))
    keys = rng.random((n_replicas, n_examples))
    return np.argpartition(keys, batch_size - 1, axis=1)[:, :batch_size]


def stochastic_gradient(problem: FiniteSumProblem, theta: np.ndarray, batch_size: int,
                        rng: np.random.Generator, *, replacement: bool = False,
                        noise_enhancement: float = 0.0) -> np.ndarray:
    """One minibatch gradient per replica, shape ``(R, d)``; with α ≠ 0 the
    noise-enhanced combination (1+α) ĝ_{B1} − α ĝ_{B2}."""
    n_rep = theta.shape[0]
    idx = minibatch_indices(rng, problem.n_examples, n_rep, batch_size, replacement)
    g = problem.minibatch_grad(theta, idx)
    if noise_enhancement:
        a = noise_enhancement
        idx2 = minibatch_indices(rng, problem.n_examples, n_rep, batch_size, replacement)
        g = (1 + a) * g - a * problem.minibatch_grad(theta, idx2)
    return g


def replica_array(theta0: np.ndarray, n_replicas: int | None) -> np.ndarray:
    """A fresh (R, d) float array of starting points: ``theta0`` (d,) copied to
    ``n_replicas`` replicas, or a copy of ``theta0`` when it is already (R, d)."""
    theta0 = np.asarray(theta0, dtype=float)
    if theta0.ndim == 1:
        if n_replicas is None:
            raise ValueError("n_replicas is required when theta0 is one point")
        return np.tile(theta0, (n_replicas, 1))
    return theta0.copy()


@dataclass
class SGDRun:
    """Result of :func:`simulate_sgd`.

    ``theta``: final parameters, (R, d). ``snapshots``: (K, R, d) parameters at the
    recorded steps ``steps`` (K,), empty if nothing was recorded. ``diverged``: (R,)
    True where a replica left the finite numbers (its θ is frozen from then on).
    """

    theta: np.ndarray
    snapshots: np.ndarray
    steps: np.ndarray
    diverged: np.ndarray


def _replica_loop(theta: np.ndarray, n_steps: int, increment: Callable[[np.ndarray, int], np.ndarray],
                  *, descend: bool, record_every: int, burn_in: int,
                  progress_desc: str | None = None) -> SGDRun:
    """The one replica loop of :func:`simulate_sgd` and :func:`euler_maruyama`.

    Step k = 1..n_steps: ``step = increment(theta, k)`` (R, d), a fresh array that the loop
    may change; θ ← θ − step (``descend``) or θ + step. A replica whose θ leaves the finite
    numbers is marked diverged and frozen (its step zeroed) from the next step on. With
    ``record_every`` = k > 0, θ is recorded every k steps once ``burn_in`` steps have passed.
    ``theta`` (R, d) is updated in place.
    """
    n_rep, d = theta.shape
    diverged = np.zeros(n_rep, dtype=bool)
    snaps, steps = [], []
    it = range(1, n_steps + 1)
    if progress_desc is not None:
        from tqdm.auto import tqdm

        it = tqdm(it, desc=progress_desc, leave=False)
    for k in it:
        step = increment(theta, k)
        if diverged.any():
            step[diverged] = 0.0
        if descend:
            theta -= step
        else:
            theta += step
        # One cheap reduction per step (non-finite if any entry is); the per-replica check
        # only once something overflowed.
        if not np.isfinite(theta.sum()):
            diverged |= ~np.isfinite(theta).all(-1)
        if record_every and k > burn_in and (k - burn_in) % record_every == 0:
            snaps.append(theta.copy())
            steps.append(k)
    snapshots = np.stack(snaps) if snaps else np.empty((0, n_rep, d))
    return SGDRun(theta, snapshots, np.asarray(steps, dtype=int), diverged)


def simulate_sgd(problem: FiniteSumProblem, theta0: np.ndarray, lr: float, batch_size: int,
                 n_steps: int, *, n_replicas: int | None = None, replacement: bool = False,
                 noise_enhancement: float = 0.0, record_every: int = 0, burn_in: int = 0,
                 seed: int = 0, progress: bool = False) -> SGDRun:
    """Run R replicas of minibatch SGD for ``n_steps`` steps of size η = ``lr``.

    ``theta0`` is (d,) (copied to every replica, then ``n_replicas`` is required) or
    (R, d). With ``record_every`` = k > 0 the parameters are recorded every k steps
    once ``burn_in`` steps have passed (for stationary histograms).
    """
    if lr <= 0 or batch_size < 1 or batch_size > problem.n_examples or n_steps < 0:
        raise ValueError("need lr > 0, 1 <= batch_size <= n_examples and n_steps >= 0")
    theta = replica_array(theta0, n_replicas)
    rng = np.random.default_rng(seed)

    def sgd_step(theta: np.ndarray, k: int) -> np.ndarray:  # η ĝ_k, subtracted
        return lr * stochastic_gradient(problem, theta, batch_size, rng, replacement=replacement,
                                        noise_enhancement=noise_enhancement)

    return _replica_loop(theta, n_steps, sgd_step, descend=True, record_every=record_every,
                         burn_in=burn_in, progress_desc="SGD steps" if progress else None)


def euler_maruyama(drift, diffusion_sqrt, theta0: np.ndarray, dt: float, n_steps: int, *,
                   n_replicas: int | None = None, record_every: int = 0, burn_in: int = 0,
                   seed: int = 0) -> SGDRun:
    """Euler–Maruyama for R replicas of the Itô SDE dθ = a(θ) dt + G(θ) dW:

        θ_{k+1} = θ_k + a(θ_k) Δt + G(θ_k) sqrt(Δt) z_k,   z_k ~ N(0, I) i.i.d.

    Strong order ½, weak order 1 in Δt. ``drift``: (R, d) → (R, d), the drift a
    (for SGD, −∇L). ``diffusion_sqrt``: (R, d) → (R, d) (diagonal G, applied
    elementwise) or (R, d, d) (matrix G, G Gᵀ = 2D; for SGD, G = sqrt(T Σ(θ))).
    Time is in SDE units (for SGD, Δt = η is one step). ``theta0``, ``record_every``,
    ``burn_in`` and the returned :class:`SGDRun` work as in :func:`simulate_sgd`; ``steps``
    counts Euler steps. Seeded: the same arguments give the same numbers.
    """
    if dt <= 0 or n_steps < 0:
        raise ValueError("need dt > 0 and n_steps >= 0")
    theta = replica_array(theta0, n_replicas)
    n_rep, d = theta.shape
    rng = np.random.default_rng(seed)
    sqrt_dt = np.sqrt(dt)
    # Gaussian increments are drawn for a block of steps at once (fewer calls into the
    # generator); the block size depends only on (R, d), so results stay seeded.
    block = max(1, min(n_steps, 2**20 // max(1, n_rep * d)))
    z = np.empty((block, n_rep, d))

    def em_step(theta: np.ndarray, k: int) -> np.ndarray:  # a Δt + G sqrt(Δt) z_k, added
        j = (k - 1) % block
        if j == 0:
            rng.standard_normal(out=z)
        g = np.asarray(diffusion_sqrt(theta), dtype=float)
        noise = np.einsum("rij,rj->ri", g, z[j]) if g.ndim == 3 else g * z[j]
        return np.asarray(drift(theta), dtype=float) * dt + sqrt_dt * noise

    return _replica_loop(theta, n_steps, em_step, descend=False, record_every=record_every,
                         burn_in=burn_in)
