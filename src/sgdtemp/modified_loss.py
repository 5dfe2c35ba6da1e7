"""Modified losses of gradient descent and of shuffled SGD, and the epoch map they describe.

One epoch of SGD with random shuffling (Smith, Dherin, Barrett & De, 2021) visits the N
examples in a random order, in m = N/B minibatches of size B, each example once:

    ω_{k+1} = ω_k − ε ∇Ĉ_k(ω_k),   k = 0, …, m−1,   Ĉ_k = (1/B) Σ_{i∈batch k} ℓ_i.

Averaged over orderings, the iterate after the epoch follows gradient flow for time mε on

    C_SGD(ω) = C(ω) + (ε/4m) Σ_k ||∇Ĉ_k(ω)||²                                  (one partition)
    E C_SGD  = C + (ε/4) ||∇C||² + (ε/4B) (N−B)/(N−1) tr Σ(ω)                 (over shuffles)

up to O(ε³) per epoch, against O(ε²) for plain gradient flow on C. Full-batch gradient
descent has the modified loss C_GD = C + (ε/4)||∇C||² (the B = N case).

Exact gradients, no autodiff: ∇||∇Ĉ_k||² = 2 Ĥ_k ∇Ĉ_k, and with per-example gradients g_i
and Hessians H_i,  ∇ tr Σ = (2/N) Σ_i H_i g_i − 2 H ∇C  (from tr Σ = (1/N)Σ||g_i||² − ||∇C||²).
Per-example Hessians are known exactly for the two regression problems of
:mod:`sgdtemp.regression`: H_i = w_i x_i x_iᵀ + λI (w_i = 1 for least squares,
w_i = σ(m_i)σ(−m_i) for logistic regression), so H_i g never needs a (d, d) matrix per example.

Units: ω in parameter units, ε in (parameter units)²/(loss units) as the learning rate,
all modified losses in loss units.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.integrate import solve_ivp

from sgdtemp.dynamics import replica_array
from sgdtemp.landscapes import FiniteSumProblem
from sgdtemp.regression import LinearRegression, LogisticRegression


# ---------------------------------------------------------------- per-example curvature
def curvature_weights(problem: FiniteSumProblem, theta: np.ndarray) -> np.ndarray:
    """w_i in H_i = ∇²ℓ_i(θ) = w_i x_i x_iᵀ + λI, shape ``(..., N)``.

    Least squares: w_i = 1. Logistic regression: w_i = σ(m_i)σ(−m_i), m_i the margin.
    """
    if isinstance(problem, LinearRegression):
        return np.ones(np.shape(theta)[:-1] + (problem.n_examples,))
    if isinstance(problem, LogisticRegression):
        p = 0.5 * (1.0 + np.tanh(0.5 * problem.margins(theta)))   # σ(m), stable
        return p * (1.0 - p)
    raise NotImplementedError(
        f"per-example Hessians are implemented for LinearRegression and LogisticRegression, "
        f"not {type(problem).__name__}")


def example_hessians(problem: FiniteSumProblem, theta: np.ndarray) -> np.ndarray:
    """∇²ℓ_i(θ) for every example, shape ``(..., N, d, d)`` (for tests and small N·d²)."""
    w = curvature_weights(problem, theta)
    H = np.einsum("...n,nd,ne->...nde", w, problem.X, problem.X)
    return H + problem.l2 * np.eye(problem.dim)


def _hessian_times(problem, w, idx, v):
    """(1/b) Σ_{i∈idx} H_i v, one vector v per row: w (..., N) curvature weights,
    idx (..., b) example indices, v (..., d); returns (..., d)."""
    X = problem.X[idx]
    ww = np.take_along_axis(w, idx, axis=-1)
    proj = np.einsum("...bd,...d->...b", X, v)
    return np.einsum("...b,...b,...bd->...d", ww, proj, X) / idx.shape[-1] + problem.l2 * v


# ---------------------------------------------------------------- the losses
def grad_norm_sq(problem: FiniteSumProblem, theta: np.ndarray) -> np.ndarray:
    """||∇C(θ)||², shape ``(...)``."""
    return np.sum(problem.grad(theta) ** 2, -1)


def grad_norm_sq_grad(problem: FiniteSumProblem, theta: np.ndarray) -> np.ndarray:
    """∇||∇C||² = 2 H ∇C, shape ``(..., d)``."""
    return 2 * np.einsum("...de,...e->...d", problem.hessian(theta), problem.grad(theta))


def noise_trace(problem: FiniteSumProblem, theta: np.ndarray) -> np.ndarray:
    """tr Σ(θ) = (1/N) Σ_i ||g_i − ∇C||², shape ``(...)``; units of gradient²."""
    g = problem.example_grads(theta)
    return np.mean(np.sum(g**2, -1), -1) - np.sum(g.mean(-2) ** 2, -1)


def noise_trace_grad(problem: FiniteSumProblem, theta: np.ndarray) -> np.ndarray:
    """∇ tr Σ = (2/N) Σ_i H_i g_i − 2 H ∇C, shape ``(..., d)`` (exact, per-example Hessians)."""
    theta = np.asarray(theta, dtype=float)
    w = curvature_weights(problem, theta)
    g = problem.example_grads(theta)                      # (..., N, d)
    proj = np.einsum("nd,...nd->...n", problem.X, g)        # x_iᵀ g_i
    mean_Hg = np.einsum("...n,...n,nd->...d", w, proj, problem.X) / problem.n_examples
    mean_Hg = mean_Hg + problem.l2 * g.mean(-2)
    return 2 * mean_Hg - grad_norm_sq_grad(problem, theta)


def finite_population_factor(n_examples: int, batch_size: int) -> float:
    """κ_B = (N − B)/(N − 1): Cov of a without-replacement minibatch mean is κ_B Σ/B."""
    return (n_examples - batch_size) / (n_examples - 1)


def gd_modified_loss(problem, theta, lr):
    """C_GD = C + (ε/4)||∇C||² (loss units)."""
    return problem.loss(theta) + lr / 4 * grad_norm_sq(problem, theta)


def gd_modified_loss_grad(problem, theta, lr):
    """∇C_GD = ∇C + (ε/2) H ∇C."""
    return problem.grad(theta) + lr / 4 * grad_norm_sq_grad(problem, theta)


def expected_sgd_modified_loss(problem, theta, lr, batch_size):
    """E C_SGD = C + (ε/4)||∇C||² + (ε/4B)(N−B)/(N−1) tr Σ (average over random shuffles)."""
    kappa = finite_population_factor(problem.n_examples, batch_size)
    return (gd_modified_loss(problem, theta, lr)
            + lr / (4 * batch_size) * kappa * noise_trace(problem, theta))


def expected_sgd_modified_loss_grad(problem, theta, lr, batch_size):
    """∇ E C_SGD = ∇C_GD + (ε/4B)(N−B)/(N−1) ∇ tr Σ."""
    kappa = finite_population_factor(problem.n_examples, batch_size)
    return (gd_modified_loss_grad(problem, theta, lr)
            + lr / (4 * batch_size) * kappa * noise_trace_grad(problem, theta))


def sgd_modified_loss(problem, theta, lr, partition):
    """C_SGD = C + (ε/4m) Σ_k ||∇Ĉ_k||² for one partition, ``partition`` of shape (m, B)."""
    partition = np.asarray(partition)
    m = partition.shape[0]
    g = problem.example_grads(theta)                      # (..., N, d)
    gk = g[..., partition, :].mean(-2)                    # (..., m, d)
    return problem.loss(theta) + lr / (4 * m) * np.sum(gk**2, (-1, -2))


def sgd_modified_loss_grad(problem, theta, lr, partition):
    """∇C_SGD = ∇C + (ε/2m) Σ_k Ĥ_k ∇Ĉ_k (exact per-example gradients and Hessians)."""
    theta = np.asarray(theta, dtype=float)
    partition = np.asarray(partition)
    m = partition.shape[0]
    w = curvature_weights(problem, theta)
    total = np.zeros_like(theta)
    for batch in partition:
        gk = problem.minibatch_grad(theta, batch)
        total = total + _hessian_times(problem, w, _rows(batch, theta), gk)
    return problem.grad(theta) + lr / (2 * m) * total


def _rows(batch, theta):
    # One index row per leading position of theta (broadcast a batch to the replica shape).
    return np.broadcast_to(batch, np.shape(theta)[:-1] + batch.shape)


# ---------------------------------------------------------------- flows and the epoch map
def gradient_flow(grad: Callable[[np.ndarray], np.ndarray], theta0: np.ndarray, time: float, *,
                  rtol: float = 1e-12, atol: float = 1e-14) -> np.ndarray:
    """θ(t) solving dθ/dt = −grad(θ), θ(0) = θ0, at t = ``time`` (DOP853, tight tolerances).

    ``grad`` maps a (d,) point to a (d,) gradient. The integration error is far below the
    O(ε³) differences this module is used to resolve (check by halving the tolerances).
    """
    theta0 = np.asarray(theta0, dtype=float)
    sol = solve_ivp(lambda t, th: -grad(th), (0.0, float(time)), theta0, method="DOP853",
                    rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"gradient flow integration failed: {sol.message}")
    return sol.y[:, -1]


def flow_endpoints(problem: FiniteSumProblem, theta0: np.ndarray, lr: float, batch_size: int,
                   **tol) -> dict[str, np.ndarray]:
    """Endpoints after time mε = (N/B)ε of gradient flow on C, C_GD and E C_SGD."""
    m = problem.n_examples // batch_size
    t = m * lr
    return {
        "C": gradient_flow(problem.grad, theta0, t, **tol),
        "C_GD": gradient_flow(lambda th: gd_modified_loss_grad(problem, th, lr), theta0, t, **tol),
        "C_SGD": gradient_flow(
            lambda th: expected_sgd_modified_loss_grad(problem, th, lr, batch_size),
            theta0, t, **tol),
    }


def random_orderings(rng: np.random.Generator, n_orderings: int, n_examples: int,
                     batch_size: int | None = None) -> np.ndarray:
    """Uniform random permutations of the N examples, shape ``(R, N)``.

    With ``batch_size`` given, the orderings come in antithetic pairs: rows R/2 … R−1 are
    rows 0 … R/2−1 with their N/B minibatches visited in reverse order. Each row is still a
    uniform random permutation, so the mean over rows is unbiased; reversing swaps the
    second-order terms Σ_{j<k} Ĥ_k ĝ_j ↔ Σ_{j>k} Ĥ_k ĝ_j, whose sum depends on the partition
    only, and this removes most of the ordering noise of the mean iterate (variance reduction).
    """
    if batch_size is None:
        return rng.permuted(np.broadcast_to(np.arange(n_examples), (n_orderings, n_examples)),
                            axis=1)
    if n_orderings % 2 or n_examples % batch_size:
        raise ValueError("antithetic pairs need an even n_orderings and B dividing N")
    half = random_orderings(rng, n_orderings // 2, n_examples)
    m = n_examples // batch_size
    rev = half.reshape(-1, m, batch_size)[:, ::-1].reshape(-1, n_examples)
    return np.concatenate([half, rev])


def shuffled_sgd_epoch(problem: FiniteSumProblem, theta0: np.ndarray, lr: float,
                       orderings: np.ndarray, batch_size: int) -> np.ndarray:
    """Iterates after one epoch of shuffled SGD, one per ordering, shape ``(R, d)``.

    ``orderings`` (R, N) are permutations; ordering r takes minibatch k =
    orderings[r, kB:(k+1)B] at step k, k = 0, …, N/B − 1 (no replacement within the epoch).
    """
    orderings = np.asarray(orderings)
    n_rep, n = orderings.shape
    if n != problem.n_examples or n % batch_size:
        raise ValueError("orderings must be (R, N) with N a multiple of batch_size")
    theta = replica_array(theta0, n_rep)
    for k in range(n // batch_size):
        idx = orderings[:, k * batch_size:(k + 1) * batch_size]
        theta -= lr * problem.minibatch_grad(theta, idx)
    return theta


def epoch_group_means(problem: FiniteSumProblem, theta0: np.ndarray, lrs, batch_size: int,
                      n_orderings: int, *, n_groups: int = 20, antithetic: bool = True,
                      seed: int = 0) -> np.ndarray:
    """Mean one-epoch iterate over random orderings, in ``n_groups`` independent groups.

    Returns an array (G, n_lr, d): entry [g, j] is the mean of ω_m over the g-th group of
    ``n_orderings // G`` orderings at learning rate lrs[j]. The same orderings are used at
    every learning rate (common random numbers), so differences across ε are smooth; the
    group means are independent, so their spread gives Monte Carlo errors of anything
    computed from them (jackknife over groups). ``antithetic``: pair each ordering with its
    minibatch-reversed twin inside the group (see :func:`random_orderings`).
    """
    lrs = np.atleast_1d(np.asarray(lrs, dtype=float))
    per = n_orderings // n_groups
    per -= per % 2 if antithetic else 0
    if per < 1:
        raise ValueError("need n_orderings >= n_groups")
    out = np.empty((n_groups, lrs.size, problem.dim))
    rng = np.random.default_rng(seed)
    for g in range(n_groups):
        orderings = random_orderings(rng, per, problem.n_examples,
                                     batch_size if antithetic else None)
        for j, lr in enumerate(lrs):
            out[g, j] = shuffled_sgd_epoch(problem, theta0, lr, orderings, batch_size).mean(0)
    return out


def fit_error_order(lrs, errors, n_corrections: int = 1):
    """Order p of an error e(ε) = a ε^p (1 + c₁ε + … + c_k ε^k), fitted on log-log axes.

    Least squares of log e on [1, log ε, ε, …, ε^k] (k = ``n_corrections``): the correction
    terms absorb the next orders of the series so that p is the leading order, not a local
    slope. Returns (p, standard error of p from the regression residuals).
    """
    lrs = np.asarray(lrs, dtype=float)
    y = np.log(np.asarray(errors, dtype=float))
    A = np.stack([np.ones_like(lrs), np.log(lrs)] + [lrs**k for k in range(1, n_corrections + 1)], 1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    dof = len(y) - A.shape[1]
    if dof < 1:
        raise ValueError("need more learning rates than fitted parameters")
    cov = (resid @ resid / dof) * np.linalg.inv(A.T @ A)
    return float(coef[1]), float(np.sqrt(cov[1, 1]))


def trace_coefficient_ratio(mean_iterates: np.ndarray, flows: dict[str, np.ndarray]) -> np.ndarray:
    """ρ = (ω̄ − ω_GD)·Δ / ‖Δ‖²,  Δ = ω_SGD − ω_GD  (flow endpoints from :func:`flow_endpoints`).

    The tr Σ term of E C_SGD moves the flow endpoint by Δ, linearly in its coefficient
    (ε/4B)(N−B)/(N−1) to leading order; ρ is the coefficient the mean iterates ω̄ (shape
    (..., d)) actually show, in units of the predicted one: ρ → 1 as ε → 0 if the
    regularizer's strength is ε/B times the finite-population factor. Dimensionless.
    """
    delta = flows["C_SGD"] - flows["C_GD"]
    return (np.asarray(mean_iterates) - flows["C_GD"]) @ delta / (delta @ delta)


def jackknife(statistic: Callable[[np.ndarray], np.ndarray], groups: np.ndarray):
    """Value and jackknife standard error of ``statistic`` over independent group means.

    ``groups``: (G, ...) group means; ``statistic`` maps a (...) mean to a float or array.
    Returns (statistic of the full mean, standard error), the leave-one-group-out estimate
    SE² = (G−1)/G Σ_g (s_(g) − s̄)².
    """
    groups = np.asarray(groups)
    n = groups.shape[0]
    full = np.asarray(statistic(groups.mean(0)))
    total = groups.sum(0)
    loo = np.stack([np.asarray(statistic((total - groups[g]) / (n - 1))) for g in range(n)])
    se = np.sqrt((n - 1) / n * np.sum((loo - loo.mean(0)) ** 2, 0))
    return full, se


# ---------------------------------------------------------------- chapter statistics
def mean_iterate_se(groups: np.ndarray) -> np.ndarray:
    """Monte Carlo standard error of the mean iterate, one value per learning rate.

    ``groups``: (G, n_lr, d) group means from :func:`epoch_group_means`. Returns shape
    (n_lr,): the norm of the per-coordinate standard errors, √(Σ_c var_g(ω̄_c) / G), in
    parameter units.
    """
    groups = np.asarray(groups)
    return np.sqrt(groups.var(0, ddof=1).sum(-1) / groups.shape[0])


def flow_error_order(lrs, groups: np.ndarray, flows, which: str):
    """Fitted order of the distance from the mean iterate to one flow, with its uncertainty.

    ``flows``: one :func:`flow_endpoints` dict per learning rate; ``which``: "C", "C_GD" or
    "C_SGD". The error at each ε is e(ε) = ‖ω̄_m − ω_which(mε)‖ (parameter units), ω̄_m the
    mean over all groups. Its order p is fitted by :func:`fit_error_order` with one
    correction term; the uncertainty adds in quadrature the regression standard error, the
    Monte Carlo error (jackknife over the groups) and the truncation uncertainty (the range
    of p when 1, 2 or 3 correction terms are fitted). Returns (p, total s.e., errors (n_lr,)).
    """
    target = np.stack([f[which] for f in flows])

    def errors(means):
        return np.linalg.norm(means - target, axis=-1)

    err = errors(groups.mean(0))
    p1, se_reg = fit_error_order(lrs, err, n_corrections=1)
    spread = np.ptp([fit_error_order(lrs, err, n_corrections=k)[0] for k in (1, 2, 3)])
    _, se_mc = jackknife(lambda mean: fit_error_order(lrs, errors(mean), 1)[0], groups)
    return p1, float(np.sqrt(se_reg**2 + se_mc**2 + spread**2)), err


def extrapolated_trace_ratio(lrs, groups: np.ndarray, flows) -> dict:
    """ρ of :func:`trace_coefficient_ratio` at each learning rate, and its limit ε → 0.

    ``groups``: (G, n_lr, d) group means; ``flows``: one :func:`flow_endpoints` dict per
    learning rate. ρ(0) is the intercept of a quadratic in ε fitted to ρ(ε); its error adds
    in quadrature the Monte Carlo error (jackknife over groups) and the truncation
    uncertainty ``|ρ(0)_quadratic − ρ(0)_linear|``. Returns a dict with "eps", "rho", "rho_se"
    (jackknife s.e. per ε), "rho0" and "se" (dimensionless).
    """
    lrs = np.asarray(lrs, dtype=float)

    def rho_of(means):
        return np.array([trace_coefficient_ratio(means[j], flows[j]) for j in range(len(lrs))])

    def intercept(means, deg=2):
        return np.polyfit(lrs, rho_of(means), deg)[-1]

    rho, rho_se = jackknife(rho_of, groups)
    rho0, se_mc = jackknife(intercept, groups)
    trunc = abs(rho0 - intercept(groups.mean(0), deg=1))
    return {"eps": lrs, "rho": rho, "rho_se": rho_se, "rho0": float(rho0),
            "se": float(np.hypot(se_mc, trunc))}


# ---------------------------------------------------------------- network runs
def window_mean_table(recs, key: str, cell_key: str, cells, *, n_seeds: int, first_seed: int,
                      window: int) -> np.ndarray:
    """Window means of a curve laid out by cell and seed, shape (len(cells), n_seeds).

    Entry [i, s] is the mean of ``key`` over the last ``window`` epochs of the run whose
    ``config[cell_key]`` is cells[i] and whose seed is ``first_seed + s`` (units of the
    curve); NaN where there is no such run or it diverged (:func:`sgdtemp.records.metric`).
    """
    from sgdtemp import records

    out = np.full((len(cells), n_seeds), np.nan)
    for r, v in zip(recs, records.metric(recs, key, window=window)):
        out[list(cells).index(r["config"][cell_key]), r["config"]["seed"] - first_seed] = v
    return out


def extra_cpu_hours(store, arms: dict, n_need: int, cells) -> float:
    """CPU-hours to bring each (arm, value) cell up to ``n_need`` seeds.

    ``arms``: arm name → run configurations ("plain" cells keyed by "lr", the others by
    "grad_penalty"); ``store``: the results store holding them. Each missing seed costs
    the mean CPU time of the cell's stored runs (:func:`sgdtemp.records.cpu_hours`).
    ``store``: a :class:`sgdtemp.store.ResultsStore` (anything with ``entry(config)``) or
    its folder.
    """
    from sgdtemp import records
    from sgdtemp.store import ResultsStore

    store = store if hasattr(store, "entry") else ResultsStore(store)
    total = 0.0
    for arm, value in cells:
        cs = [c for c in arms[arm] if c["lr" if arm == "plain" else "grad_penalty"] == value]
        total += max(0, n_need - len(cs)) * records.cpu_hours(store.entry(c) for c in cs) / len(cs)
    return total
