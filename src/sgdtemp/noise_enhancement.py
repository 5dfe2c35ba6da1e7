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
stationary covariance and the exact expected loss curve used to check simulations.
"""

from __future__ import annotations

import numpy as np

from sgdtemp.regression import LinearRegression


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
