"""Bayesian evidence of a model with a Gaussian prior, by Laplace's method.

For per-example negative log-likelihoods ℓ_i(θ) (natural log, units of nats) and a
Gaussian prior θ ~ N(0, P⁻¹) with precision matrix P (P = λI: prior precision λ),
the *summed regularised cost* is

    C(θ) = Σ_i ℓ_i(θ) + ½ θᵀPθ,

and the evidence P(y | X) = ∫ e^{−Σℓ_i(θ)} N(θ; 0, P⁻¹) dθ. Expanding C to second
order around its minimum θ* (Laplace) gives

    log P(y | X) ≈ −C(θ*) − ½ log det(H P⁻¹),     H = ∇²C(θ*),

which for P = λI is −C(θ*) − ½ Σ_k log(λ_k/λ) over the eigenvalues λ_k of H: the
cost at the minimum plus an *Occam factor* that penalises sharp minima. For a quadratic
C (linear regression with Gaussian noise) the expansion is exact.

The evidence is a property of the model (likelihood + prior), not of the coordinates:
writing θ = Aθ' with A invertible turns the data Hessian into AᵀHA and the prior
precision into AᵀPA, and det(AᵀHA (AᵀPA)⁻¹) = det(H P⁻¹). Raw curvature (trace or top
eigenvalue of H) has no such invariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdtemp.regression import LogisticRegression


def _precision_matrix(prior_precision, dim: int) -> np.ndarray:
    p = np.asarray(prior_precision, dtype=float)
    return p * np.eye(dim) if p.ndim == 0 else p


def occam_factor(hessian_sum: np.ndarray, prior_precision) -> float:
    """Occam factor −½ log det(H P⁻¹) (nats): −½ Σ_k log(λ_k/λ) when P = λI.

    ``hessian_sum``: Hessian of the summed regularised cost (d, d); ``prior_precision``:
    λ (scalar) or the precision matrix P (d, d).
    """
    H = np.asarray(hessian_sum, dtype=float)
    P = _precision_matrix(prior_precision, H.shape[0])
    # H P⁻¹ is similar to L⁻¹ H L⁻ᵀ (P = LLᵀ), which is symmetric positive definite.
    Lc = np.linalg.cholesky(P)
    M = np.linalg.solve(Lc, np.linalg.solve(Lc, H).T)
    sign, logdet = np.linalg.slogdet(0.5 * (M + M.T))
    if sign <= 0:
        raise ValueError("the Hessian is not positive definite at this point")
    return -0.5 * logdet


def laplace_log_evidence(cost_at_min: float, hessian_sum: np.ndarray, prior_precision) -> float:
    """log P(y | X) ≈ −C(θ*) − ½ log det(H P⁻¹), in nats.

    ``cost_at_min`` = Σ_i ℓ_i(θ*) + ½ θ*ᵀPθ* (negative log-likelihoods summed, not
    averaged); ``hessian_sum`` = ∇²C(θ*).
    """
    return -float(cost_at_min) + occam_factor(hessian_sum, prior_precision)


def gaussian_linear_log_evidence(X: np.ndarray, y: np.ndarray, prior_precision: float,
                                 noise_var: float) -> float:
    """Exact log marginal likelihood of Bayesian linear regression (nats).

    y = Xθ + ε, ε ~ N(0, σ²I), θ ~ N(0, I/λ) ⇒ y ~ N(0, σ²I + XXᵀ/λ).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n = X.shape[0]
    K = noise_var * np.eye(n) + X @ X.T / prior_precision
    Lc = np.linalg.cholesky(K)
    a = np.linalg.solve(Lc, y)
    return float(-0.5 * a @ a - np.log(np.diag(Lc)).sum() - 0.5 * n * np.log(2 * np.pi))


def gaussian_linear_laplace_log_evidence(X: np.ndarray, y: np.ndarray, prior_precision: float,
                                         noise_var: float) -> float:
    """The Laplace formula applied to Bayesian linear regression (exact for this model).

    ℓ_i = (x_iᵀθ − y_i)²/(2σ²) + ½ log(2πσ²); C = Σℓ_i + ½λ||θ||²; H = XᵀX/σ² + λI.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, d = X.shape
    H = X.T @ X / noise_var + prior_precision * np.eye(d)
    theta = np.linalg.solve(H, X.T @ y / noise_var)
    r = X @ theta - y
    cost = (r @ r / (2 * noise_var) + 0.5 * n * np.log(2 * np.pi * noise_var)
            + 0.5 * prior_precision * theta @ theta)
    return laplace_log_evidence(cost, H, prior_precision)


# ---------------------------------------------------------------- logistic regression
@dataclass
class LogisticEvidence:
    """Laplace evidence of logistic regression at one prior precision.

    ``theta``: the MAP parameters θ*; ``log_evidence`` (nats); ``cost``: C(θ*);
    ``occam``: the Occam factor; ``hessian_sum``: ∇²C(θ*) (d, d);
    ``data_hessian``: Σ_i ∇²ℓ_i(θ*), the curvature without the prior (d, d).
    """

    theta: np.ndarray
    log_evidence: float
    cost: float
    occam: float
    hessian_sum: np.ndarray
    data_hessian: np.ndarray


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def logistic_map(X: np.ndarray, labels: np.ndarray, prior_precision, *, theta0=None,
                 tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """MAP estimate of logistic regression with prior N(0, P⁻¹), by Newton's method.

    Minimises C(θ) = Σ_i log(1 + e^{−s_i x_iᵀθ}) + ½ θᵀPθ (strictly convex for P ≻ 0);
    stops when the Newton decrement² /2 < ``tol`` (nats).
    """
    X = np.asarray(X, dtype=float)
    n, d = X.shape
    s = _pm_one(labels)
    P = _precision_matrix(prior_precision, d)
    theta = np.zeros(d) if theta0 is None else np.array(theta0, dtype=float)

    def cost(t):
        return np.logaddexp(0.0, -s * (X @ t)).sum() + 0.5 * t @ P @ t

    c = cost(theta)
    for _ in range(max_iter):
        m = s * (X @ theta)
        g = -(X.T @ (s * _sigmoid(-m))) + P @ theta
        w = _sigmoid(m) * _sigmoid(-m)
        H = (X.T * w) @ X + P
        step = np.linalg.solve(H, g)
        dec = g @ step
        if dec / 2 < tol:
            break
        t = 1.0  # backtracking line search keeps Newton globally convergent
        while True:
            new = theta - t * step
            cn = cost(new)
            if cn <= c - 0.25 * t * dec or t < 1e-12:
                break
            t *= 0.5
        theta, c = new, cn
    return theta


def _pm_one(labels) -> np.ndarray:
    s = np.asarray(labels)
    if set(np.unique(s)).issubset({0, 1}):
        s = 2 * s - 1
    return s.astype(float)


def logistic_evidence(X: np.ndarray, labels: np.ndarray, prior_precision, *,
                      theta0=None) -> LogisticEvidence:
    """Laplace log-evidence of logistic regression (summed loss, prior N(0, P⁻¹)).

    The data Hessian is the exact Σ_i σ(m_i)σ(−m_i) x_i x_iᵀ, i.e. N times
    :meth:`sgdtemp.regression.LogisticRegression.hessian` with ``l2`` = 0 (computed here
    as one matrix product, which is much faster than that method's einsum).
    """
    X = np.asarray(X, dtype=float)
    n, d = X.shape
    P = _precision_matrix(prior_precision, d)
    theta = logistic_map(X, labels, P, theta0=theta0)
    problem = LogisticRegression(X, labels)
    m = problem.margins(theta)
    data_h = (X.T * (_sigmoid(m) * _sigmoid(-m))) @ X
    H = data_h + P
    cost = float(problem.example_losses(theta).sum() + 0.5 * theta @ P @ theta)
    occ = occam_factor(H, P)
    return LogisticEvidence(theta, -cost + occ, cost, occ, H, data_h)


def reparametrized(X: np.ndarray, prior_precision, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and prior precision in coordinates θ' with θ = Aθ'.

    xᵀθ = (Aᵀx)ᵀθ', so X' = XA; θ ~ N(0, P⁻¹) ⇔ θ' ~ N(0, (AᵀPA)⁻¹). Same model, same
    evidence; the curvature Σ∇²ℓ_i becomes Aᵀ(Σ∇²ℓ_i)A.
    """
    A = np.asarray(A, dtype=float)
    P = _precision_matrix(prior_precision, A.shape[0])
    return np.asarray(X, dtype=float) @ A, A.T @ P @ A


# ------------------------------------------------------------------ capacity (Cover)
def linearly_separable(X: np.ndarray, labels: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether some θ classifies every example correctly, s_i x_iᵀθ > 0 for all i.

    Decided by linear programming, independent of any optimiser or prior: maximise the
    margin t subject to s_i x_iᵀθ ≥ t, ``|θ_j| ≤ 1``, t ≤ 1. The problem is always feasible
    (θ = 0, t = 0) and bounded; the labels are separable iff the optimal t > ``tol`` and the
    optimal θ separates them when checked directly.
    ``labels`` in {−1, +1} or {0, 1}.
    """
    from scipy.optimize import linprog

    X = np.asarray(X, dtype=float)
    s = np.asarray(labels, dtype=float)
    if set(np.unique(s)).issubset({0.0, 1.0}):
        s = 2 * s - 1
    n, d = X.shape
    # variables (θ, t); minimise −t; rows: t − s_i x_iᵀθ ≤ 0
    A = np.hstack([-(s[:, None] * X), np.ones((n, 1))])
    c = np.zeros(d + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=A, b_ub=np.zeros(n), bounds=[(-1, 1)] * d + [(None, 1)],
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"the separability LP did not finish ({res.message})")
    # The answer "separable" is certified by the returned θ itself, checked directly in
    # floating point (the LP's own feasibility tolerance could pass a margin of ~1e-7).
    theta = res.x[:d]
    return bool(-res.fun > tol and np.min(s * (X @ theta)) > 0)


def cover_separable_probability(n: int, dim: int) -> float:
    """Cover's function: the probability that n points in general position in ℝ^dim
    (hyperplanes through the origin; a bias counts as one dimension), labelled at random,
    are linearly separable: C(n, d)/2ⁿ = 2^(1−n) Σ_{k<d} binom(n − 1, k). 1 for n ≤ d,
    ½ at n = 2d."""
    from scipy.stats import binom

    if n <= dim:
        return 1.0
    return float(binom.cdf(dim - 1, n - 1, 0.5))
