"""Multiplicative SGD noise, power-law stationary densities and log-barrier escape.

For the mean-square loss ℓ_i = ½(x_iᵀθ − y_i)² with Gaussian inputs x ~ N(0, H) and
a residual independent of x, the per-example gradient covariance is exactly (Isserlis)

    Σ(θ) = 2L(θ) H + ∇L ∇Lᵀ,                                            (units: gradient²)

where L includes the irreducible part L* (the noise floor). Near the minimum the second
term is smaller by a factor (L − L*)/L, and Σ ≈ 2L H: the SGD noise is multiplicative
in the loss (Mori et al.). Then the SDE dθ = −∇L dt + sqrt(T Σ) dW (T = η/B) has, for
isotropic H = hI in d dimensions, the zero-flux stationary density

    p(θ) ∝ L(θ)^(−φ),   φ = 1 + B/(ηh),

a power law in the loss (density of θ, per unit volume of parameter space). The mean
time for L to first exceed c·L* grows, for c ≫ 1, as c^(B/(ηh) + 1 − d/2): a power of
the *ratio* of losses, not an exponential of their difference.

This module holds those formulas, the exact radial quadratures they come from (with
the paper's noise 2LH, with the exact Gaussian noise 2LH + ∇L∇Lᵀ, or with constant
Gibbs noise 2L*H), estimators for φ, and a first-passage simulator for real minibatch
SGD on a :class:`~sgdtemp.landscapes.FiniteSumProblem`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.integrate import cumulative_trapezoid
from scipy.optimize import brentq
from scipy.special import digamma, gammaln

from sgdtemp.dynamics import replica_array, simulate_sgd, stochastic_gradient
from sgdtemp.landscapes import FiniteSumProblem
from sgdtemp.regression import LinearRegression
from sgdtemp.stats import bootstrap

NOISE_MODELS = ("paper", "gaussian", "gibbs")
MONITORING_BETA = 0.5825971579390106  # −ζ(1/2)/sqrt(2π)


# ---------------------------------------------------------------- problems
def whitened_regression(n_examples: int, dim: int, noise_std: float,
                        rng: np.random.Generator) -> LinearRegression:
    """Linear regression with Gaussian inputs whitened so that H = XᵀX/N = I exactly (h = 1).

    Targets y = Xw + σe with a random teacher w ~ N(0, I/d) and label noise σ = ``noise_std``
    (e ~ N(0, 1)): the residual at θ* is independent of x, and the loss floor is L* ≈ σ²/2.
    Draws from ``rng`` in the order X, w, e.
    """
    X = rng.standard_normal((n_examples, dim))
    w, V = np.linalg.eigh(X.T @ X / n_examples)
    X = X @ V @ np.diag(w ** -0.5) @ V.T
    y = X @ (rng.standard_normal(dim) / np.sqrt(dim)) + noise_std * rng.standard_normal(n_examples)
    return LinearRegression(X, y)


def orthonormal_pair(dim: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two random orthonormal vectors (n, m) in ℝᵈ (d ≥ 2): n uniform on the sphere, m the
    normalised part of a second Gaussian draw orthogonal to n (Gram–Schmidt)."""
    n = rng.standard_normal(dim)
    n /= np.linalg.norm(n)
    m = rng.standard_normal(dim)
    m -= (m @ n) * n
    m /= np.linalg.norm(m)
    return n, m


# ---------------------------------------------------------------- noise covariance
def noise_covariance_models(problem: FiniteSumProblem, theta: np.ndarray,
                            loss_floor: float = 0.0) -> dict[str, np.ndarray]:
    """Per-example gradient covariance Σ(θ) and its models at one point θ (d,).

    Returns ``{"measured": Σ, "2LH": 2L H, "2LH+ggT": 2L H + ∇L∇Lᵀ,
    "2(L-floor)H": 2(L − loss_floor) H}``, each (d, d), in gradient² units. Divide by B
    for the covariance of a minibatch mean drawn with replacement.
    """
    theta = np.asarray(theta, dtype=float)
    sigma = problem.noise_covariance(theta)
    L = float(problem.loss(theta))
    H = problem.hessian(theta)
    g = problem.grad(theta)
    return {"measured": sigma, "2LH": 2 * L * H, "2LH+ggT": 2 * L * H + np.outer(g, g),
            "2(L-floor)H": 2 * (L - loss_floor) * H}


def noise_along(problem: FiniteSumProblem, theta: np.ndarray, direction: np.ndarray,
                n_boot: int = 0, rng: np.random.Generator | int = 0) -> tuple[float, np.ndarray]:
    """nᵀΣ(θ)n for a unit vector n, and (optionally) ``n_boot`` bootstrap replicates.

    The bootstrap resamples the N examples with replacement, so the spread of the
    replicates is the finite-sample error of Σ at this θ.
    """
    n = np.asarray(direction, dtype=float)
    n = n / np.linalg.norm(n)
    proj = problem.example_grads(np.asarray(theta, dtype=float)) @ n  # (N,)
    value = float(np.mean((proj - proj.mean()) ** 2))
    if not n_boot:
        return value, np.empty(0)
    rng = np.random.default_rng(rng)
    N = proj.size
    boot = np.empty(n_boot)
    for b in range(n_boot):
        p = proj[rng.integers(0, N, N)]
        boot[b] = np.mean((p - p.mean()) ** 2)
    return value, boot


def noise_ratio_rows(problem: FiniteSumProblem, theta_star: np.ndarray, radial: np.ndarray,
                     tangential: np.ndarray, excess_ratios, *, n_boot: int,
                     rng: np.random.Generator) -> list[dict]:
    """Σ(θ) against 2LH at θ = θ* + u along ``radial`` (unit n), one row per r in
    ``excess_ratios``, for an isotropic problem with H = I.

    u = sqrt(2 r L*) n, so ΔL = ½|u|² = r L*. Each row holds r, L, the ratios
    ``radial`` = nᵀΣn / 2L and ``tangential`` = mᵀΣm / 2L (m = ``tangential``, ⊥ n), the
    excess-loss ratio ``floor`` = nᵀΣn / 2(L − L*), each with a bootstrap standard error
    over the N examples (``*_se``), their Gaussian-input predictions
    ``predicted_radial`` = 1 + ΔL/L and ``predicted_floor`` = (2L − L*)/(L − L*), and the
    relative Frobenius errors ‖Σ − M‖/‖2LH‖ of M = 2LH (``frob_2LH``) and of
    M = 2LH + ∇L∇Lᵀ (``frob_exact``). All ratios are dimensionless. ``rng`` is used for the
    radial then the tangential bootstrap at each r in turn.
    """
    L_star = float(problem.loss(theta_star))
    rows = []
    for r in excess_ratios:
        theta = theta_star + np.sqrt(2 * r * L_star) * radial
        L = float(problem.loss(theta))
        rad, rad_boot = noise_along(problem, theta, radial, n_boot=n_boot, rng=rng)
        tan, tan_boot = noise_along(problem, theta, tangential, n_boot=n_boot, rng=rng)
        models = noise_covariance_models(problem, theta, loss_floor=L_star)
        scale = np.linalg.norm(models["2LH"])
        rows.append(dict(
            frob_2LH=np.linalg.norm(models["measured"] - models["2LH"]) / scale,
            frob_exact=np.linalg.norm(models["measured"] - models["2LH+ggT"]) / scale,
            r=r, L=L, radial=rad / (2 * L), radial_se=rad_boot.std(ddof=1) / (2 * L),
            tangential=tan / (2 * L), tangential_se=tan_boot.std(ddof=1) / (2 * L),
            floor=rad / (2 * (L - L_star)), floor_se=rad_boot.std(ddof=1) / (2 * (L - L_star)),
            predicted_radial=1 + (L - L_star) / L, predicted_floor=(2 * L - L_star) / (L - L_star)))
    return rows


def noise_ratio_table(rows: list[dict]) -> str:
    """The rows of :func:`noise_ratio_rows` as text, one line per ΔL/L*."""
    return "\n".join(
        f"ΔL/L* = {row['r']:5.2f}:  radial Σ/(2LH) = {row['radial']:.4f} ± {row['radial_se']:.4f} "
        f"(Gaussian theory {row['predicted_radial']:.4f}),  tangential {row['tangential']:.4f} "
        f"± {row['tangential_se']:.4f},  Σ/(2(L−L*)H) = {row['floor']:.1f};  "
        f"‖Σ − 2LH‖/‖2LH‖ = {row['frob_2LH']:.3f}, ‖Σ − 2LH − ∇L∇Lᵀ‖/‖2LH‖ = {row['frob_exact']:.3f}"
        for row in rows)


# ---------------------------------------------------------------- exponents
def power_law_exponent(lr: float, batch_size: int, h: float) -> float:
    """φ = 1 + B/(ηh): p(θ) ∝ L(θ)^(−φ) near a minimum with Hessian hI (dimensionless)."""
    return 1.0 + batch_size / (lr * h)


def loss_density_exponent(lr: float, batch_size: int, h: float, dim: int) -> float:
    """Tail exponent of the density of the *loss value*: p_L(L) ∝ (L − L*)^(d/2−1) L^(−φ)
    ~ L^(−(φ − d/2 + 1)) for L ≫ L* (the Jacobian of the level sets adds (L−L*)^(d/2−1))."""
    return power_law_exponent(lr, batch_size, h) - dim / 2 + 1.0


def escape_exponent(lr: float, batch_size: int, h: float, dim: int) -> float:
    """B/(ηh) + 1 − d/2: mean first-passage time to L = cL* grows as c^this for c ≫ 1
    (escape rate κ ∝ (L_s/L*)^(−this)); in 1-D it is ½ + B/(ηh)."""
    return batch_size / (lr * h) + 1.0 - dim / 2


def gaussian_escape_exponent(lr: float, batch_size: int, h: float, dim: int) -> float:
    """The same exponent with the exact Gaussian-input noise 2LH + ∇L∇Lᵀ: the radial
    diffusion doubles when L ≫ L*, giving B/(2ηh) + 3/4 − d/4 (derived in the chapter)."""
    return batch_size / (2 * lr * h) + 0.75 - dim / 4


# ---------------------------------------------------------------- densities
def power_law_log_normaliser(phi: float, a: float, dim: int) -> float:
    """log ∫ (1 + a|u|²)^(−φ) dᵈu = (d/2) log(π/a) + log Γ(φ − d/2) − log Γ(φ) (φ > d/2)."""
    return 0.5 * dim * np.log(np.pi / a) + gammaln(phi - dim / 2) - gammaln(phi)


def power_law_density(u: np.ndarray, L_star: float, h: float, phi: float) -> np.ndarray:
    """Normalised p(u) ∝ (L* + ½h|u|²)^(−φ) over u = θ − θ* ∈ ℝᵈ (u shape (..., d))."""
    u = np.asarray(u, dtype=float)
    a = h / (2 * L_star)
    dim = u.shape[-1]
    return np.exp(-phi * np.log1p(a * np.sum(u**2, -1)) - power_law_log_normaliser(phi, a, dim))


def stationary_density_1d(x: np.ndarray, drift: np.ndarray, diffusion: np.ndarray) -> np.ndarray:
    """Zero-flux stationary density of dx = f dt + sqrt(2D) dW (Itô) on a grid:
    p ∝ (1/D) exp(∫ f/D dx), normalised by the trapezoid rule."""
    logp = -np.log(diffusion) + cumulative_trapezoid(drift / diffusion, x, initial=0.0)
    p = np.exp(logp - logp.max())
    return p / np.trapezoid(p, x)


# ---------------------------------------------------------------- estimating φ
def phi_from_log_moment(mean_log: float, dim: int) -> float:
    """MLE of φ in p(u) ∝ (1 + a|u|²)^(−φ) (a known) from S = mean log(1 + a|u|²):
    it solves S = ψ(φ) − ψ(φ − d/2) (ψ: digamma), monotone in φ."""
    if not mean_log > 0:
        raise ValueError("the mean log-moment must be positive")
    f = lambda phi: digamma(phi) - digamma(phi - dim / 2) - mean_log  # noqa: E731
    lo = dim / 2 + 1e-12
    hi = dim / 2 + 1.0
    while f(hi) > 0:
        hi *= 2
    return brentq(f, lo, hi, xtol=1e-12, rtol=1e-12)


@dataclass
class PhiFit:
    """A fitted power-law exponent: ``phi`` (MLE), ``stderr`` (bootstrap over replicas),
    ``boot`` (the bootstrap replicates)."""

    phi: float
    stderr: float
    boot: np.ndarray


def fit_phi(u: np.ndarray, L_star: float, h: float, n_boot: int = 200,
            rng: np.random.Generator | int = 0) -> PhiFit:
    """Fit p(u) ∝ L(u)^(−φ) = (L* + ½h|u|²)^(−φ) by maximum likelihood.

    ``u``: displacements θ − θ*, shape (K, R, d): K times × R replicas. Samples within a
    replica are time-correlated, so the error comes from resampling whole replicas.
    """
    u = np.asarray(u, dtype=float)
    a = h / (2 * L_star)
    dim = u.shape[-1]
    per_replica = np.log1p(a * np.sum(u**2, -1)).mean(0)  # (R,)
    phi = phi_from_log_moment(per_replica.mean(), dim)
    rng = np.random.default_rng(rng)
    R = per_replica.size
    boot = np.array([phi_from_log_moment(per_replica[rng.integers(0, R, R)].mean(), dim)
                     for _ in range(n_boot)])
    return PhiFit(phi, float(boot.std(ddof=1)), boot)


def sgd_stationary_variance_1d(lr: float, batch_size: int, h: float, noise_var_at_min: float,
                               slope_var: float) -> float:
    """Exact stationary E[u²] of 1-D SGD on a quadratic finite sum, minibatches drawn with
    replacement: u' = u − η ĝ with E[ĝ|u] = h u and Var[ĝ|u] = (A u² + 2C u + Σ*)/B.

    Since E[u] = 0 at stationarity, E[u²] = η Σ*/B / (2h − ηh² − ηA/B) (units of θ²):
    ``noise_var_at_min`` = Σ* = Σ(θ*), ``slope_var`` = A = Var_i(∂²ℓ_i) (for linear
    regression Var_i(x_i²); 2h² for Gaussian inputs, h² in the 2LH approximation).
    Infinite when the denominator is not positive (no stationary second moment).
    """
    den = 2 * h - lr * h**2 - lr * slope_var / batch_size
    return float(lr * noise_var_at_min / batch_size / den) if den > 0 else float("inf")


def phi_from_variance(variance: float, L_star: float, h: float) -> float:
    """φ of the 1-D family (L* + ½hu²)^(−φ) with the given variance: its variance is
    2L*/(h(2φ − 3)), so φ = 3/2 + L*/(h·variance)."""
    return 1.5 + L_star / (h * variance)


def stationary_phi_fits(problem: FiniteSumProblem, theta_star: np.ndarray, batch_sizes, lrs, *,
                        relaxation_times: int, n_replicas: int, seed: int, n_boot: int,
                        rng: np.random.Generator) -> tuple[dict, dict]:
    """Fitted φ of 1-D SGD's stationary density at every (B, η) of ``batch_sizes`` × ``lrs``.

    Each run starts at θ*, discards 5 relaxation times τ = 1/(ηh) (in steps), then records
    every τ steps for ``relaxation_times`` τ in all, with ``n_replicas`` replicas drawn with
    replacement (seed = 1000·``seed`` + 10B + index of η). Returns ``(fits, samples)`` keyed
    by (B, η): the :class:`PhiFit` of :func:`fit_phi` (bootstrap over replicas from ``rng``)
    and the recorded displacements u = θ − θ*, flattened time-major (K·R,).
    """
    L_star = float(problem.loss(theta_star))
    h = float(problem.hessian(theta_star)[0, 0])
    lrs = list(lrs)
    fits, samples = {}, {}
    for B in batch_sizes:
        for lr in lrs:
            tau = 1.0 / (lr * h)
            every = max(1, int(round(tau)))
            run = simulate_sgd(problem, theta_star, lr, B, int(relaxation_times * tau),
                               n_replicas=n_replicas, replacement=True, record_every=every,
                               burn_in=int(5 * tau), seed=seed * 1000 + 10 * B + lrs.index(lr))
            u = run.snapshots - theta_star
            fits[B, lr] = fit_phi(u, L_star, h, n_boot=n_boot, rng=rng)
            samples[B, lr] = u[..., 0].ravel()
    return fits, samples


def small_eta_extrapolation(fits: dict, lrs, batch_sizes, h: float) -> dict[int, dict]:
    """Per batch size B, y = (φ̂ − 1)ηh/B against x = ηh, extrapolated to ηh → 0.

    Eq. (φ − 1)ηh/B = 1 − ηh(½ + 1/2B) + O((ηh)²): a weighted (1/s.e.) quadratic fit over
    all η but the largest. Returns, per B, ``y`` and ``se`` (one per η, dimensionless),
    ``coef`` (quadratic, linear, intercept, as np.polyfit) and ``cov`` (their covariance,
    unscaled: from the standard errors alone).
    """
    x = np.array(lrs) * h
    mask = x < x.max()
    out = {}
    for B in batch_sizes:
        y = np.array([(fits[B, lr].phi - 1) * lr * h / B for lr in lrs])
        se = np.array([fits[B, lr].stderr * lr * h / B for lr in lrs])
        coef, cov = np.polyfit(x[mask], y[mask], 2, w=1 / se[mask], cov="unscaled")
        out[B] = dict(y=y, se=se, coef=coef, cov=cov)
    return out


def variance_matched_phi(u: np.ndarray, n_replicas: int, L_star: float,
                         h: float) -> tuple[float, float]:
    """φ = 3/2 + L*/(h m) from the mean square m of 1-D displacements, and its standard error.

    ``u`` (K·R,) is flattened time-major over ``n_replicas`` replicas (as
    :func:`stationary_phi_fits` returns it); m is averaged per replica first, so the error
    s.e.(m) comes from the spread across replicas and s.e.(φ) = L*/(h m²)·s.e.(m).
    """
    u2 = (np.asarray(u) ** 2).reshape(-1, n_replicas).mean(0)
    m, m_se = u2.mean(), u2.std(ddof=1) / np.sqrt(u2.size)
    return phi_from_variance(m, L_star, h), L_star / (h * m**2) * m_se


# ---------------------------------------------------------------- first passage: theory
def _radial_diffusions(rho, h, L_star, temperature, model):
    L = L_star + 0.5 * h * rho**2
    if model == "paper":
        return temperature * h * L, temperature * h * L
    if model == "gaussian":
        # radial Σ_rr = 2Lh + h²ρ² = 2h(2L − L*); tangential 2Lh
        return temperature * h * (2 * L - L_star), temperature * h * L
    if model == "gibbs":
        D = temperature * h * L_star * np.ones_like(rho)
        return D, D
    raise ValueError(f"model must be one of {', '.join(NOISE_MODELS)}; got {model!r}")


def mean_first_passage_time(levels: np.ndarray, h: float, L_star: float, temperature: float,
                            dim: int, model: str = "paper", n_grid: int = 200_001,
                            monitor_step: float | None = None) -> np.ndarray:
    """Mean SDE time (units of η·steps) for L, started at θ*, to first reach c·L*.

    Isotropic quadratic L = L* + ½hρ², ρ = ‖θ − θ*‖, noise covariance T·Σ with Σ from
    ``model`` ("paper": 2LH; "gaussian": 2LH + ∇L∇Lᵀ; "gibbs": 2L*H, constant). The radius
    obeys dρ = (−hρ + (d−1)D_t/ρ) dt + sqrt(2D_r) dW (Itô), so with the radial stationary
    density p_s the mean exit time from the ball ρ < ρ_c (reflecting at 0) is
    τ(ρ_c) = ∫₀^ρc dy /(D_r p_s(y)) ∫₀^y p_s(z) dz.

    ``monitor_step`` = Δt (η for SGD): the path is only looked at every Δt, so it can
    cross and come back unseen; to leading order this moves the boundary outward by
    β·sqrt(2 D_r Δt), β = −ζ(½)/sqrt(2π) ≈ 0.5826 (Broadie, Glasserman & Kou's
    continuity correction).
    """
    levels = np.asarray(levels, dtype=float)
    rho_c = np.sqrt(2 * L_star * (levels - 1) / h)
    if monitor_step:
        Dr_c, _ = _radial_diffusions(rho_c, h, L_star, temperature, model)
        rho_c = rho_c + MONITORING_BETA * np.sqrt(2 * Dr_c * monitor_step)
    rho = np.linspace(0.0, rho_c.max(), n_grid)[1:]
    Dr, Dt = _radial_diffusions(rho, h, L_star, temperature, model)
    # log p_s = −log D_r + ∫ (−hρ + (d−1)(D_t − D_r)/ρ)/D_r dρ + (d−1) log ρ: the singular
    # (d−1)/ρ part is integrated analytically.
    g = (-h * rho + (dim - 1) * (Dt - Dr) / rho) / Dr
    logp = -np.log(Dr) + cumulative_trapezoid(g, rho, initial=0.0) + (dim - 1) * np.log(rho)
    p = np.exp(logp - logp.max())
    inner = cumulative_trapezoid(p, rho, initial=0.0) + p[0] * rho[0] / dim
    tau = cumulative_trapezoid(inner / (Dr * p), rho, initial=0.0)
    return np.interp(rho_c, rho, tau)


def escape_levels(h: float, L_star: float, lr: float, batch_size: int, dim: int,
                  target_steps: float, n_levels: int = 6, span: float = 30.0,
                  n_grid: int = 20_001) -> np.ndarray:
    """Levels c (L = cL*, dimensionless) spaced geometrically between where the 2LH SDE
    (monitored every step) predicts a mean first passage of ``target_steps``/``span`` SGD
    steps and where it predicts ``target_steps``: the window the escape slope is fitted on.

    Steps = τ(c)/η with τ from :func:`mean_first_passage_time` (T = η/B); each end is the
    root of log(steps(c)/target) by Brent's method.
    """
    T = lr / batch_size

    def steps_at(c):
        return mean_first_passage_time(np.array([c]), h, L_star, T, dim, "paper", n_grid=n_grid,
                                       monitor_step=lr)[0] / lr

    c_hi = brentq(lambda c: np.log(steps_at(c) / target_steps), 1 + 1e-6, 1e3)
    c_lo = brentq(lambda c: np.log(steps_at(c) * span / target_steps), 1 + 1e-9, c_hi)
    return np.geomspace(c_lo, c_hi, n_levels)


# ---------------------------------------------------------------- first passage: SGD
def first_passage_steps(problem: FiniteSumProblem, theta0: np.ndarray, lr: float,
                        batch_size: int, thresholds: np.ndarray, *, n_replicas: int,
                        max_steps: int, replacement: bool = True, seed: int = 0,
                        loss=None) -> np.ndarray:
    """First SGD step at which L(θ_k) > each threshold, per replica: (R, n_thresholds).

    All replicas start at ``theta0``; a replica stops once it has passed the largest
    threshold. Entries never reached within ``max_steps`` are ``inf``. ``loss`` (θ (R, d)
    → (R,)) replaces ``problem.loss`` when a closed form is cheaper (for linear
    regression L* + ½ uᵀHu is exact and avoids a pass over all N examples per step).
    """
    loss = problem.loss if loss is None else loss
    thresholds = np.sort(np.asarray(thresholds, dtype=float))
    rng = np.random.default_rng(seed)
    theta = replica_array(theta0, n_replicas)
    out = np.full((n_replicas, thresholds.size), np.inf)
    active = np.arange(n_replicas)
    for k in range(1, max_steps + 1):
        th = theta[active]
        th -= lr * stochastic_gradient(problem, th, batch_size, rng, replacement=replacement)
        theta[active] = th
        passed = (loss(th)[:, None] > thresholds) & np.isinf(out[active])
        if passed.any():
            r, c = np.nonzero(passed)
            out[active[r], c] = k
        active = active[np.isinf(out[active, -1])]
        if active.size == 0:
            break
    return out


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def quadratic_loss(theta_star: np.ndarray, L_star: float, H: np.ndarray):
    """L(θ) = L* + ½ uᵀHu, u = θ − θ*, for replicas θ (R, d) → (R,): exact for linear
    regression, and cheaper than a pass over the N examples."""
    def loss(theta):
        u = theta - theta_star
        return L_star + 0.5 * np.einsum("rd,de,re->r", u, H, u)
    return loss


def escape_summary(levels: np.ndarray, steps: np.ndarray, h: float, L_star: float, lr: float,
                   batch_size: int, dim: int, *, n_boot: int, rng: np.random.Generator) -> dict:
    """Mean first-passage steps of SGD against the SDE theories, and their log-log slopes.

    ``steps`` (R, levels) from :func:`first_passage_steps`; replicas that did not pass every
    level are dropped (counted in ``unfinished``). Returns ``levels``, ``mean`` and ``se``
    (steps per level), ``slope`` (least-squares slope of log mean steps against log c) with
    ``slope_se`` (bootstrap over replicas, from ``rng``), ``theory`` (mean steps τ/η for each
    of ``NOISE_MODELS``, monitored every step) with ``theory_slope`` on the same levels,
    ``unfinished`` and ``h``.
    """
    T = lr / batch_size
    done = np.isfinite(steps).all(1)
    steps = steps[done]
    mean = steps.mean(0)
    slope_se, _ = bootstrap(steps, lambda s_: loglog_slope(levels, s_.mean(0)), n_boot=n_boot, rng=rng)
    theory = {m: mean_first_passage_time(levels, h, L_star, T, dim, m, monitor_step=lr) / lr
              for m in NOISE_MODELS}
    return dict(levels=levels, mean=mean, se=steps.std(0, ddof=1) / np.sqrt(len(steps)),
                slope=loglog_slope(levels, mean), slope_se=slope_se, theory=theory,
                theory_slope={m: loglog_slope(levels, t) for m, t in theory.items()},
                unfinished=int((~done).sum()), h=h)


def escape_summary_text(dim: int, summary: dict, lr: float, batch_size: int) -> str:
    """One line for an :func:`escape_summary`: the window of c, SGD's slope ± bootstrap s.e.,
    the three SDE slopes on the same window, the asymptotic exponent and unfinished replicas."""
    f, ts = summary, summary["theory_slope"]
    return (f"d = {dim}: c in [{f['levels'][0]:.3f}, {f['levels'][-1]:.3f}], slope {f['slope']:.2f} ± "
            f"{f['slope_se']:.2f};  log-landscape (2LH) {ts['paper']:.2f}, "
            f"exact noise {ts['gaussian']:.2f}, Gibbs {ts['gibbs']:.2f};"
            f"  asymptotic exponent {escape_exponent(lr, batch_size, f['h'], dim):.2f}; "
            f"unfinished {f['unfinished']}")
