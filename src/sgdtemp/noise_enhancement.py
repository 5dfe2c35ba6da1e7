"""Noise enhancement (Mori & Ueda): the effective batch size and exact linear-model theory.

The enhanced gradient combines two independent minibatch gradients of size B,

    ĝ = (1 + α) ĝ_{B1} − α ĝ_{B2},

so E ĝ = ∇L and, the two being independent with the same covariance C_B,

    Cov ĝ = (1 + α)² C_B + α² C_B = (1 + 2α + 2α²) C_B.

With C_B = κ Σ/B (κ = 1 with replacement, (N − B)/(N − 1) without) the noise is that of one
minibatch of the *effective batch size* B_eff = B/(1 + 2α + 2α²), at a cost of 2B
per-example gradients per step.

On least squares the first two moments of SGD close exactly (the gradient is linear in θ),
including the multiplicative part of the noise, which gives the exact discrete-time
stationary covariance and the exact expected loss curve used to check simulations; the
simulated counterparts (:func:`excess_loss_paths`, :func:`stationary_excess_loss`) live here
too. The network section's bookkeeping (window means at matched record times, the collapse
contrast on B_eff, the seeds and CPU-hours an open claim needs) is at the end.
"""

from __future__ import annotations

import numpy as np

from sgdtemp.dynamics import simulate_sgd
from sgdtemp.records import cpu_hours, metric
from sgdtemp.regression import LinearRegression
from sgdtemp.stats import fixed_effects_coefficient, seeds_to_detect


def enhancement_factor(alpha: float) -> float:
    """1 + 2α + 2α²: covariance of the enhanced gradient over that of one minibatch."""
    return 1.0 + 2.0 * alpha + 2.0 * alpha**2


def effective_batch_size(batch_size: int, alpha: float) -> float:
    """B_eff = B/(1 + 2α + 2α²)."""
    return batch_size / enhancement_factor(alpha)


def alpha_for_effective_batch(batch_size: int, effective_batch: float) -> float:
    """The α ≥ 0 with B/(1 + 2α + 2α²) = B_eff: α = (−1 + √(2B/B_eff − 1))/2 (needs B_eff ≤ B)."""
    if not 0 < effective_batch <= batch_size:
        raise ValueError("need 0 < effective_batch <= batch_size")
    return 0.5 * (-1.0 + np.sqrt(2.0 * batch_size / effective_batch - 1.0))


def noise_scale(n_examples: int, batch_size: int, alpha: float = 0.0,
                replacement: bool = False) -> float:
    """c such that Cov ĝ = c Σ(θ): c = (1 + 2α + 2α²) κ/B, κ = (N − B)/(N − 1) without
    replacement and 1 with it. Units: 1/examples."""
    kappa = 1.0 if replacement else (n_examples - batch_size) / (n_examples - 1)
    return enhancement_factor(alpha) * kappa / batch_size


# ---------------------------------------------------------------- measurement helpers
def covariance_trace_estimate(grads: np.ndarray) -> tuple[float, float]:
    """Unbiased estimate of tr Cov from R independent draws ``grads`` (R, d), and its
    standard error.

    tr Ĉ = (1/(R−1)) Σ_r ||g_r − ḡ||²; its standard error is the standard deviation of
    the per-draw terms ||g_r − ḡ||² over √R (the sampling variance of the estimator).
    """
    g = np.asarray(grads, dtype=float)
    r = g.shape[0]
    q = np.sum((g - g.mean(0)) ** 2, -1) * r / (r - 1)
    return float(q.mean()), float(q.std(ddof=1) / np.sqrt(r))


# ---------------------------------------------------------------- exact linear-model theory
def _moment_operators(problem: LinearRegression, theta_star: np.ndarray):
    """Σ* = Σ(θ*), a_i = g_i(θ*) and D_i = x_i x_iᵀ − XᵀX/N (per-example Hessian minus mean)."""
    if not isinstance(problem, LinearRegression):
        raise NotImplementedError("the exact moment theory is for LinearRegression")
    a = problem.example_grads(theta_star)                  # (N, d); mean is ∇L(θ*) = 0
    X = problem.X
    D = np.einsum("nd,ne->nde", X, X) - X.T @ X / problem.n_examples
    sigma = a.T @ a / problem.n_examples - np.outer(a.mean(0), a.mean(0))
    return sigma, a, D


def multiplicative_operator(problem: LinearRegression) -> np.ndarray:
    """The (d², d²) matrix 𝓜 with vec((1/N) Σ_i D_i S D_i) = 𝓜 vec(S): the part of the noise
    covariance that grows with the spread S of θ around θ*."""
    X = problem.X
    D = np.einsum("nd,ne->nde", X, X) - X.T @ X / problem.n_examples
    return np.einsum("nab,ncd->acbd", D, D).reshape(problem.dim**2, problem.dim**2) / problem.n_examples


def stationary_covariance(problem: LinearRegression, lr: float, scale: float, *,
                          multiplicative: bool = True) -> np.ndarray:
    """Exact stationary covariance S of θ − θ* for SGD with noise covariance scale·Σ(θ).

    Solves the discrete Lyapunov equation S = A S Aᵀ + η² c [Σ(θ*) + 𝓜(S)], A = I − ηH,
    c = ``scale`` (see :func:`noise_scale`). Without ``multiplicative`` the term 𝓜(S)
    (the noise's growth away from θ*) is dropped, the additive approximation.
    Exact for least squares, whose gradient is linear in θ (units: parameter²).
    """
    d = problem.dim
    theta_star = problem.minimizer()
    sigma, _, _ = _moment_operators(problem, theta_star)
    H = problem.hessian(theta_star)
    A = np.eye(d) - lr * H
    op = np.eye(d * d) - np.kron(A, A)
    if multiplicative:
        op = op - lr**2 * scale * multiplicative_operator(problem)
    vec = np.linalg.solve(op, lr**2 * scale * sigma.reshape(-1))
    S = vec.reshape(d, d)
    return 0.5 * (S + S.T)


def expected_excess_loss_curve(problem: LinearRegression, lr: float, scale: float,
                               theta0: np.ndarray, n_steps: int) -> np.ndarray:
    """Exact E[L(θ_k)] − L* for k = 0 … n_steps, every replica started at ``theta0``.

    With δ = θ − θ*, mean μ and second moment S: μ_{k+1} = A μ_k and
    S_{k+1} = A S_k Aᵀ + η² c [Σ* + K(μ_k) + K(μ_k)ᵀ + 𝓜(S_k)], K(μ) = (1/N) Σ_i a_i (D_i μ)ᵀ,
    and E[L] − L* = ½ tr(H S). Depends on the sampling only through c = ``scale``, so
    plain SGD at B_eff and enhanced SGD at (B, α) have the same curve, step for step.
    """
    d = problem.dim
    theta_star = problem.minimizer()
    sigma, a, D = _moment_operators(problem, theta_star)
    H = problem.hessian(theta_star)
    A = np.eye(d) - lr * H
    M = multiplicative_operator(problem)
    mu = np.asarray(theta0, dtype=float) - theta_star
    S = np.outer(mu, mu)
    out = np.empty(n_steps + 1)
    out[0] = 0.5 * np.trace(H @ S)
    for k in range(1, n_steps + 1):
        K = np.einsum("na,nbc,c->ab", a, D, mu) / problem.n_examples
        noise = sigma + K + K.T + (M @ S.reshape(-1)).reshape(d, d)
        S = A @ S @ A.T + lr**2 * scale * noise
        mu = A @ mu
        out[k] = 0.5 * np.trace(H @ S)
    return out


# ---------------------------------------------------------------- least-squares simulations
def excess_loss_paths(problem: LinearRegression, theta0: np.ndarray, lr: float, batch_size: int,
                      n_steps: int, *, n_replicas: int, alpha: float = 0.0, seed: int = 0,
                      record_every: int = 1, burn_in: int = 0) -> np.ndarray:
    """L(θ) − L* = ½ δᵀHδ (δ = θ − θ*) along R replicas of SGD from ``theta0``, shape
    (snapshots, R): every ``record_every`` steps after ``burn_in`` (with the defaults, steps
    1 … ``n_steps``).

    Minibatches are drawn with replacement, so enhanced SGD at (B, α) has exactly the noise
    scale of plain SGD at B_eff (see :func:`noise_scale`); ``alpha`` = 0 is plain SGD.
    Units: those of the loss.
    """
    theta_star = problem.minimizer()
    H = problem.hessian(theta_star)
    run = simulate_sgd(problem, theta0, lr, batch_size, n_steps, n_replicas=n_replicas,
                       replacement=True, noise_enhancement=alpha, record_every=record_every,
                       burn_in=burn_in, seed=seed)
    delta = run.snapshots - theta_star
    return 0.5 * np.einsum("kri,ij,krj->kr", delta, H, delta)


def replica_mean_se(paths: np.ndarray) -> tuple[float, float]:
    """Mean over replicas of each replica's time average of ``paths`` (snapshots, R), and its
    standard error s/√R: the time averages are independent across replicas, so s is their
    sample standard deviation (ddof = 1)."""
    per_replica = np.asarray(paths, dtype=float).mean(0)
    return float(per_replica.mean()), float(per_replica.std(ddof=1) / np.sqrt(per_replica.size))


def stationary_excess_loss(problem: LinearRegression, lr: float, batch_size: int, alpha: float,
                           *, n_steps: int, n_replicas: int, burn_in: int, record_every: int,
                           seed: int) -> tuple[float, float]:
    """Measured stationary E L − L* of SGD (enhanced when ``alpha`` > 0) started at θ*, and
    its standard error: :func:`replica_mean_se` of :func:`excess_loss_paths` after
    ``burn_in`` steps. Units: those of the loss."""
    paths = excess_loss_paths(problem, problem.minimizer(), lr, batch_size, n_steps,
                              n_replicas=n_replicas, alpha=alpha, seed=seed,
                              record_every=record_every, burn_in=burn_in)
    return replica_mean_se(paths)


def stationary_excess_loss_theory(problem: LinearRegression, lr: float, scale: float, *,
                                  multiplicative: bool = True) -> float:
    """Exact stationary E L − L* = ½ tr(H S), S from :func:`stationary_covariance` at noise
    scale c = ``scale``; without ``multiplicative``, the additive-noise approximation."""
    H = problem.hessian(problem.minimizer())
    return 0.5 * np.trace(H @ stationary_covariance(problem, lr, scale, multiplicative=multiplicative))


def ratio_mean_se(numerator: np.ndarray, denominator: np.ndarray) -> tuple[float, float]:
    """r = mean(numerator)/mean(denominator) of two independent samples and its standard
    error by the delta method, se_r = r·√((se_n/m_n)² + (se_d/m_d)²), each se = s/√n
    (ddof = 1). Unitless when both samples have the same units."""
    a, b = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    ratio = a.mean() / b.mean()
    se = ratio * np.hypot(a.std(ddof=1) / np.sqrt(a.size) / a.mean(),
                          b.std(ddof=1) / np.sqrt(b.size) / b.mean())
    return float(ratio), float(se)


# ---------------------------------------------------------------- network runs
def n_records(cell: list[dict]) -> int:
    """Records (evaluations after the initial one) of the first run of ``cell``, a list of
    training records (one per seed) with a ``test_acc`` curve."""
    return len(cell[0]["curves"]["test_acc"]) - 1


def window_accuracy(cell: list[dict], like: list[dict] | None = None) -> np.ndarray:
    """Per seed: test accuracy (%) averaged over the last third of the records (at least one).

    With ``like`` (runs of as many steps, recorded every m-th record time of ``cell``) the
    average is taken at the record times of ``like`` only, over the last third of *its*
    records, so the two averages cover the same steps. NaN for a diverged run.
    """
    n, n_like = n_records(cell), n_records(like or cell)
    k, every = max(1, n_like // 3), n // n_like
    if n % n_like:
        raise ValueError(f"the finer record must contain the coarser one; got {n} and {n_like} records.")
    if every == 1:
        return 100 * metric(cell, "test_acc", window=k)
    return 100 * np.array([np.nan if r["diverged"] else np.mean(r["curves"]["test_acc"][::-every][:k])
                           for r in cell])


def collapse_coefficient(plain: dict, enhanced: dict, large_batch: int):
    """The collapse test on B_eff: coefficient of log₂ B at fixed B_eff, with a free level per
    B_eff and per seed (:func:`sgdtemp.stats.contrasts.fixed_effects_coefficient`); zero when only
    B_eff matters. ``plain`` and ``enhanced`` map each B_eff to per-seed values (the same
    seeds in the same order); a plain run has B = B_eff, an enhanced one B = ``large_batch``.
    Units: those of the values per doubling of B."""
    lvl = list(plain)
    n_seeds = len(plain[lvl[0]])
    y = np.concatenate([plain[b] for b in lvl] + [enhanced[b] for b in lvl])
    log2_B = np.log2(np.repeat(lvl + [large_batch] * len(lvl), n_seeds))
    b_eff = np.tile(np.repeat(lvl, n_seeds), 2)
    seed_of = np.tile(np.arange(n_seeds), 2 * len(lvl))
    return fixed_effects_coefficient(y, log2_B, b_eff, seed_of)


def seeds_to_resolve(decision, n_seeds: int, dof_per_seed: float, dof_offset: int
                     ) -> tuple[float, int | None]:
    """For a claim's decision: the margin (agreement) or effect (directional) its test must
    be able to see, and the seeds at which its 80%-power detectable difference reaches it
    (:func:`sgdtemp.stats.decisions.seeds_to_detect`, se ∝ 1/√n; None beyond 10,000 seeds)."""
    target = decision.margin if decision.kind == "agreement" else decision.effect
    return target, seeds_to_detect(target, decision.se, n_seeds, dof_per_seed, dof_offset)


def cpu_hours_per_seed(store, cells: list[list[dict]], n_seeds: int) -> float:
    """CPU-hours one more seed of ``cells`` (each a list of run configurations, one per seed)
    costs: the stored runs' CPU time (:func:`sgdtemp.records.cpu_hours`) over ``n_seeds``."""
    return cpu_hours(store.entry(c) for cell in cells for c in cell) / n_seeds
