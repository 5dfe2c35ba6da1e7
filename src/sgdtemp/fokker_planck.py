"""Fokker–Planck theory of SGD: stationary densities, grid solvers, escape times.

Conventions (used by every function here). SGD with learning rate η and batch size B
is approximated by the Itô SDE in continuous time t = kη (units: one unit of t is
1/η steps)

    dθ = −∇L(θ) dt + sqrt(2 D(θ)) dW,    D(θ) = ½ T Σ(θ),   T = η/B,

where Σ(θ) is the per-example gradient covariance (units gradient²) and D the
diffusion matrix (units θ² per unit time). Its density p(θ, t) obeys the
Fokker–Planck equation

    ∂_t p = ∇·(p ∇L) + ∂_i ∂_j (D_ij p) = −∇·J,    J = −p∇L − ∇·(D p).

Densities are returned as values on a grid (units 1/θ^d), normalised so that the
trapezoid (1-D, closed-form functions) or cell sum (grid solvers) integrates to one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from scipy.integrate import cumulative_trapezoid, trapezoid


def _on_grid(f, x: np.ndarray) -> np.ndarray:
    """Values of ``f`` (a callable, an array or a scalar) on the points ``x``."""
    if callable(f):
        return np.broadcast_to(np.asarray(f(x), dtype=float), x.shape).astype(float)
    return np.broadcast_to(np.asarray(f, dtype=float), x.shape).astype(float)


# ------------------------------------------------------------------ closed forms (1-D)
def effective_potential_1d(grid: np.ndarray, dloss, diffusion) -> np.ndarray:
    """Effective potential Φ(θ) = −log p(θ) of the stationary density, on ``grid``.

    For dθ = −L'(θ) dt + sqrt(2D(θ)) dW with zero probability flux,

        Φ(θ) = ∫^θ L'(u)/D(u) du + log D(θ) + const,

    the constant fixing ∫ exp(−Φ) dθ = 1 (trapezoid on ``grid``). The log D term is
    the one state-dependent noise adds to the Gibbs form: where the noise is large,
    Φ is raised, so noise trades depth against low curvature. The integral is
    a cumulative trapezoid, exact to O(h²) in the grid step h.

    ``dloss``, ``diffusion``: L' and D on ``grid`` (arrays, scalars or callables);
    D > 0 everywhere. Dimensionless.
    """
    x = np.asarray(grid, dtype=float)
    g, D = _on_grid(dloss, x), _on_grid(diffusion, x)
    if np.any(D <= 0):
        raise ValueError("diffusion must be positive on the grid")
    phi = cumulative_trapezoid(g / D, x, initial=0.0) + np.log(D)
    phi -= phi.min()
    return phi + np.log(trapezoid(np.exp(-phi), x))


def stationary_density_1d(grid: np.ndarray, dloss, diffusion) -> np.ndarray:
    """Exact stationary density of the 1-D Itô SDE dθ = −L' dt + sqrt(2D) dW:

        p(θ) = (1/Z) (1/D(θ)) exp(−∫^θ L'(u)/D(u) du),

    (zero-flux solution of 0 = ∂(L' p) + ∂²(D p); set q = D p, then q' = −(L'/D) q).
    For SGD, D(θ) = ½ T Σ(θ). Normalised with the trapezoid rule on ``grid``; units 1/θ.
    """
    return np.exp(-effective_potential_1d(grid, dloss, diffusion))


def gibbs_density(grid, loss: np.ndarray, temperature_times_sigma2: float) -> np.ndarray:
    """Gibbs density p ∝ exp(−2L/(T σ²)) for constant isotropic noise Σ = σ² I.

    (D = ½Tσ² constant, so Φ = L/D.) ``grid``: a 1-D array of points, or a tuple of
    1-D axes when ``loss`` is given on their ``meshgrid(..., indexing="ij")``;
    normalised with the trapezoid rule along every axis. Units 1/θ^d.
    """
    axes = (grid,) if not isinstance(grid, (tuple, list)) else tuple(grid)
    loss = np.asarray(loss, dtype=float)
    e = -2.0 * loss / float(temperature_times_sigma2)
    p = np.exp(e - e.max())
    z = p
    for k in range(len(axes) - 1, -1, -1):
        z = trapezoid(z, np.asarray(axes[k], dtype=float), axis=k)
    return p / z


# ------------------------------------------------------------------ grid Fokker–Planck
@dataclass
class FPOperator:
    """Discretised Fokker–Planck generator: dp/dt = ``matrix`` @ p.

    ``p`` holds density values at the cell centres ``axes`` (flattened in C order,
    ``indexing="ij"``); ``cell_volume`` (h or hx·hy) turns them into probabilities.
    Columns of ``matrix`` sum to zero: probability is conserved exactly.
    """

    matrix: sp.csr_matrix
    axes: tuple
    cell_volume: float

    @property
    def shape(self) -> tuple:
        return tuple(len(a) for a in self.axes)


def _bernoulli(z: np.ndarray) -> np.ndarray:
    """B(z) = z / (eᶻ − 1), with B(0) = 1 (stable for all z)."""
    z = np.asarray(z, dtype=float)
    out = np.ones_like(z)
    small = np.abs(z) < 1e-8
    zz = z[~small]
    out[~small] = zz / np.expm1(zz)
    out[small] = 1.0 - z[small] / 2
    return out


def _uniform_step(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    h = np.diff(x)
    if x.ndim != 1 or x.size < 3 or np.any(h <= 0) or np.ptp(h) > 1e-9 * h.mean():
        raise ValueError("grid axes must be uniform, increasing, with at least 3 points")
    return float(h.mean())


def _sg_flux_coefficients(c_mid: np.ndarray, h: float):
    """Scharfetter–Gummel flux between neighbouring cells i, i+1.

    With q = D p and c = L'/D frozen at the interface, the flux J = −c q − q' is
    constant on [x_i, x_{i+1}] and solves to J = (B(ch) q_i − B(−ch) q_{i+1}) / h.
    Positive for every h (no cell-Péclet limit), second order in h.
    """
    z = c_mid * h
    return _bernoulli(z) / h, _bernoulli(-z) / h


def _divergence_1d(n: int, a: np.ndarray, b: np.ndarray, d: np.ndarray, h: float) -> sp.csr_matrix:
    """−∂_x J as a matrix acting on p, for fluxes J_{i+1/2} = a_i D_i p_i − b_i D_{i+1} p_{i+1}
    at the n−1 inner interfaces and J = 0 at both ends (reflecting walls)."""
    i = np.arange(n - 1)
    # Flux leaving cell i to the right enters cell i+1; rows: d p_i / dt.
    rows = np.concatenate([i, i, i + 1, i + 1])
    cols = np.concatenate([i, i + 1, i, i + 1])
    vals = np.concatenate([-a * d[i], b * d[i + 1], a * d[i], -b * d[i + 1]]) / h
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def fp_operator_1d(grid: np.ndarray, dloss, diffusion) -> FPOperator:
    """Finite-volume generator of ∂_t p = ∂_θ(L' p) + ∂²_θ(D p) on a uniform grid.

    Cells are centred on ``grid`` (step h); walls at the grid ends carry no flux.
    ``dloss`` (L') and ``diffusion`` (D > 0): callables (evaluated at cell faces for
    the drift, centres for D) or arrays on ``grid`` (faces get the average).
    Scharfetter–Gummel fluxes: stationary solution positive, error O(h²).
    Units: matrix in 1/time.
    """
    x = np.asarray(grid, dtype=float)
    h = _uniform_step(x)
    D = _on_grid(diffusion, x)
    if np.any(D <= 0):
        raise ValueError("diffusion must be positive on the grid")
    xm = 0.5 * (x[1:] + x[:-1])
    if callable(dloss) and callable(diffusion):
        c_mid = _on_grid(dloss, xm) / _on_grid(diffusion, xm)
    else:
        g = _on_grid(dloss, x)
        c_mid = 0.5 * (g[1:] / D[1:] + g[:-1] / D[:-1])
    a, b = _sg_flux_coefficients(c_mid, h)
    return FPOperator(_divergence_1d(x.size, a, b, D, h).tocsr(), (x,), h)


def fp_operator_2d(grid_x: np.ndarray, grid_y: np.ndarray, dloss, diffusion) -> FPOperator:
    """Finite-volume generator of the 2-D Fokker–Planck equation with diagonal diffusion,

        ∂_t p = ∂_x(p ∂_xL) + ∂_y(p ∂_yL) + ∂²_x(D_x p) + ∂²_y(D_y p),

    on the tensor grid ``grid_x`` × ``grid_y`` (cell centres, uniform steps), no flux
    through the outer walls. ``dloss``: callable (X, Y) → (∂_xL, ∂_yL) (evaluated on
    cell faces) or an array of shape (2, nx, ny) on the centres. ``diffusion``: a
    scalar (isotropic constant), an array (nx, ny) (isotropic) or (2, nx, ny)
    (diagonal D_x, D_y), or a callable (X, Y) returning one of those. Each direction
    uses Scharfetter–Gummel fluxes; p is flattened in C order, shape (nx, ny).
    """
    x = np.asarray(grid_x, dtype=float)
    y = np.asarray(grid_y, dtype=float)
    hx, hy = _uniform_step(x), _uniform_step(y)
    nx, ny = x.size, y.size

    def diff_at(X, Y):
        d = diffusion(X, Y) if callable(diffusion) else diffusion
        d = np.asarray(d, dtype=float)
        if d.shape == (2,) + X.shape:  # diagonal (D_x, D_y)
            return d[0], d[1]
        d = np.broadcast_to(d, X.shape).astype(float)  # isotropic
        return d, d

    X, Y = np.meshgrid(x, y, indexing="ij")
    Dx, Dy = diff_at(X, Y)
    if np.any(Dx <= 0) or np.any(Dy <= 0):
        raise ValueError("diffusion must be positive on the grid")

    # Drift over diffusion on the x-faces (nx−1, ny) and y-faces (nx, ny−1).
    if callable(dloss):
        Xf, Yf = np.meshgrid(0.5 * (x[1:] + x[:-1]), y, indexing="ij")
        cx = np.asarray(dloss(Xf, Yf)[0], dtype=float)
        Xg, Yg = np.meshgrid(x, 0.5 * (y[1:] + y[:-1]), indexing="ij")
        cy = np.asarray(dloss(Xg, Yg)[1], dtype=float)
        if callable(diffusion):
            cx = cx / diff_at(Xf, Yf)[0]
            cy = cy / diff_at(Xg, Yg)[1]
        else:
            cx = cx / (0.5 * (Dx[1:] + Dx[:-1]))
            cy = cy / (0.5 * (Dy[:, 1:] + Dy[:, :-1]))
    else:
        g = np.asarray(dloss, dtype=float)
        if g.shape != (2, nx, ny):
            raise ValueError("dloss array must have shape (2, nx, ny)")
        cx = 0.5 * (g[0][1:] / Dx[1:] + g[0][:-1] / Dx[:-1])
        cy = 0.5 * (g[1][:, 1:] / Dy[:, 1:] + g[1][:, :-1] / Dy[:, :-1])

    idx = np.arange(nx * ny).reshape(nx, ny)
    rows, cols, vals = [], [], []

    def add(i0, i1, a, b, d0, d1, h):
        # Flux from cell i0 to its neighbour i1: J = (a D0 p0 − b D1 p1)/h.
        i0, i1 = i0.ravel(), i1.ravel()
        a, b, d0, d1 = a.ravel(), b.ravel(), d0.ravel(), d1.ravel()
        rows.extend([i0, i0, i1, i1])
        cols.extend([i0, i1, i0, i1])
        vals.extend([-a * d0 / h, b * d1 / h, a * d0 / h, -b * d1 / h])

    ax, bx = _sg_flux_coefficients(cx, hx)
    add(idx[:-1], idx[1:], ax, bx, Dx[:-1], Dx[1:], hx)
    ay, by = _sg_flux_coefficients(cy, hy)
    add(idx[:, :-1], idx[:, 1:], ay, by, Dy[:, :-1], Dy[:, 1:], hy)
    n = nx * ny
    A = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, n))
    return FPOperator(A, (x, y), hx * hy)


def fp_steady_state(op: FPOperator) -> np.ndarray:
    """Stationary density of a grid generator: the null vector of ``op.matrix``,
    normalised so Σ p · cell_volume = 1. Shape ``op.shape``; units 1/θ^d.

    The columns of the generator sum to zero, so any one of its rows is a combination
    of the others; replacing row k by the condition p_k = 1 gives a non-singular sparse
    system (for a connected grid) with no fill-in, solved directly. It is solved twice:
    pinned at the middle cell, then at the most probable cell, where p_k is far from
    underflow and the solution is best conditioned.
    """
    A = op.matrix.tocsr()
    n = A.shape[0]

    def pinned(k):
        keep = np.ones(n)
        keep[k] = 0.0
        M = sp.diags(keep) @ A + sp.csr_matrix(([1.0], ([k], [k])), shape=(n, n))
        rhs = np.zeros(n)
        rhs[k] = 1.0
        return spla.spsolve(M.tocsc(), rhs)

    k0 = n // 2
    p = pinned(k0)
    k1 = int(np.argmax(p))
    if k1 != k0:
        p = pinned(k1)
    p = np.clip(p, 0.0, None)
    p /= p.sum() * op.cell_volume
    return p.reshape(op.shape)


def fp_evolve(op: FPOperator, p0: np.ndarray, t: float, n_steps: int,
              method: str = "expm") -> np.ndarray:
    """Densities p(t_k), t_k = k t / n_steps, k = 0..n_steps, of dp/dt = A p.

    ``method="expm"``: exact in time (scipy's ``expm_multiply``);
    ``method="implicit"``: implicit Euler with step t/n_steps (one sparse LU,
    first order in time, unconditionally stable and positivity-preserving).
    Both conserve Σ p · cell_volume. Returns shape ``(n_steps + 1, *op.shape)``.
    """
    p = np.asarray(p0, dtype=float).ravel()
    if p.size != op.matrix.shape[0]:
        raise ValueError("p0 does not match the operator's grid")
    if method == "expm":
        out = spla.expm_multiply(op.matrix.tocsc(), p, start=0.0, stop=float(t),
                                 num=n_steps + 1, endpoint=True)
    elif method == "implicit":
        dt = float(t) / n_steps
        lu = spla.splu((sp.identity(p.size, format="csc") - dt * op.matrix).tocsc())
        out = [p]
        for _ in range(n_steps):
            p = lu.solve(p)
            out.append(p)
        out = np.stack(out)
    else:
        raise ValueError("method must be 'expm' or 'implicit'")
    return np.asarray(out).reshape((n_steps + 1,) + op.shape)


# ------------------------------------------------------------------ escape
def kramers_rate(loss_barrier: float, curv_min: float, curv_saddle: float,
                 diffusion: float) -> float:
    """Kramers escape rate (overdamped, constant D, 1-D), in 1/time::

        k = sqrt(h_min |h_s|) / (2π) · exp(−ΔL / D),

    ΔL = L(saddle) − L(min) > 0, h_min = L''(min) > 0, h_s = L''(saddle) < 0.
    Asymptotic for ΔL/D → ∞ (relative error O(D/ΔL)). 1/k is the mean time to pass
    well beyond the saddle (e.g. to the next minimum); the mean time to *reach* the
    saddle is half of it. For SGD, D = ½ T Σ at the relevant points (taken constant here).
    """
    return float(np.sqrt(curv_min * abs(curv_saddle)) / (2 * np.pi)
                 * np.exp(-loss_barrier / diffusion))


def kramers_escape_time(loss_barrier: float, curv_min: float, curv_saddle: float,
                        diffusion: float) -> float:
    """Mean escape time 1/k of :func:`kramers_rate`, in SDE time (steps = time/η)."""
    return 1.0 / kramers_rate(loss_barrier, curv_min, curv_saddle, diffusion)


def mean_first_passage_time_1d(grid: np.ndarray, dloss, diffusion, start, target):
    """Exact mean first-passage time from ``start`` to ``target`` of the 1-D Itô SDE
    dθ = −L' dt + sqrt(2D(θ)) dW, with D state-dependent allowed:

        τ(x) = ∫_x^b dy / (D(y) p_s(y)) ∫_a^y p_s(z) dz,

    b = ``target`` (absorbing), a = the grid end beyond ``start`` (reflecting), p_s the
    stationary density of :func:`stationary_density_1d` (its normalisation cancels).
    It solves −L' τ' + D τ'' = −1, τ(b) = 0, τ'(a) = 0. Either direction works
    (target above or below start); ``start`` may be an array. Trapezoid quadrature on
    ``grid``, error O(h²). Units: SDE time (divide by η for SGD steps).
    """
    x = np.asarray(grid, dtype=float)
    g, D = _on_grid(dloss, x), _on_grid(diffusion, x)
    start_arr = np.asarray(start, dtype=float)
    target = float(target)
    s_ref = float(np.mean(start_arr))
    if target < s_ref:
        # Mirror θ → −θ: the drift changes sign, D does not.
        return mean_first_passage_time_1d(-x[::-1], -g[::-1], D[::-1], -start_arr, -target)
    if np.any(start_arr > target) or target > x[-1] or np.any(start_arr < x[0]):
        raise ValueError("need grid[0] <= start <= target <= grid[-1] (or the mirror image)")
    phi = effective_potential_1d(x, g, D)  # −log p_s
    phi -= phi.min()
    ps = np.exp(-phi)
    inner = cumulative_trapezoid(ps, x, initial=0.0)  # ∫_a^y p_s
    # inner/(D p_s) = exp(log inner + Φ − log D): combined in the exponent, so that far
    # tails where p_s underflows (inner = 0) give 0 instead of 0·inf.
    with np.errstate(divide="ignore"):
        outer = cumulative_trapezoid(np.exp(np.log(inner) + phi - np.log(D)), x, initial=0.0)
    F = lambda v: np.interp(v, x, outer)
    return F(target) - F(start_arr)


# ------------------------------------------------------------------ Ornstein–Uhlenbeck
def ou_stationary_covariance(H: np.ndarray, C: np.ndarray, temperature: float) -> np.ndarray:
    """Stationary covariance S of the OU process dθ = −Hθ dt + sqrt(T C) dW:

        H S + S Hᵀ = T C     (continuous Lyapunov equation).

    Near a minimum of L with Hessian H and gradient-noise covariance C = Σ(θ*)
    (times the finite-N factor (N−B)/(N−1) without replacement), T = η/B.
    If C = H (and H symmetric) then S = (T/2) I and E[L] − L* = ½ tr(HS) = (T/4) tr H.
    Units θ².
    """
    H = np.atleast_2d(np.asarray(H, dtype=float))
    C = np.atleast_2d(np.asarray(C, dtype=float))
    S = scipy.linalg.solve_continuous_lyapunov(H, temperature * C)
    return 0.5 * (S + S.T)


def sgd_stationary_covariance_discrete(H: np.ndarray, C: np.ndarray, lr: float,
                                       batch_size: int, n_examples: int | None = None
                                       ) -> np.ndarray:
    """Exact stationary covariance of the discrete SGD recursion on a quadratic,

        θ_{k+1} = θ_k − η (H θ_k + ξ_k),   Cov ξ_k = C / B  (i.i.d., additive),
        S = (I − ηH) S (I − ηH)ᵀ + η² C / B     (discrete Lyapunov equation).

    With ``n_examples`` = N, minibatches are taken without replacement and the noise is
    C/B · (N − B)/(N − 1). In 1-D, S = η C / (B h (2 − η h)) (needs 0 < ηh < 2),
    which is the SDE value T C/(2h) times 1/(1 − ηh/2): the SDE underestimates the
    variance by a relative ηh/2 exactly. Units θ².
    """
    H = np.atleast_2d(np.asarray(H, dtype=float))
    C = np.atleast_2d(np.asarray(C, dtype=float))
    noise = C / batch_size
    if n_examples is not None:
        noise = noise * (n_examples - batch_size) / (n_examples - 1)
    A = np.eye(H.shape[0]) - lr * H
    if np.max(np.abs(np.linalg.eigvals(A))) >= 1:
        raise ValueError("the recursion is unstable (need |eig(I − ηH)| < 1): no stationary law")
    S = scipy.linalg.solve_discrete_lyapunov(A, lr**2 * noise)
    return 0.5 * (S + S.T)


def sgd_stationary_covariance_linear_regression(X: np.ndarray, residuals: np.ndarray,
                                                lr: float, batch_size: int, *,
                                                replacement: bool = True,
                                                l2: float = 0.0, tol: float = 1e-13,
                                                max_iter: int = 200) -> np.ndarray:
    """Exact stationary covariance of SGD on linear regression, multiplicative noise included.

    With δ = θ − θ*, ℓ_i = ½(x_iᵀθ − y_i)² + ½λ||θ||², r_i = x_iᵀθ* − y_i (``residuals``),
    the per-example gradient is (x_i x_iᵀ + λI) δ + x_i r_i + λθ*, so the step is linear
    in δ with a random matrix and E[δ] = 0 in the stationary state. Its covariance solves

        S = A S Aᵀ + (η²/B) κ [Σ* + M(S)],   A = I − ηH,
        M(S) = (1/N) Σ_i x_i x_iᵀ S x_i x_iᵀ − (H − λI) S (H − λI),

    Σ* = Σ(θ*) the per-example covariance at the minimum, κ = 1 with replacement and
    (N − B)/(N − 1) without. For d ≤ 40 the d²×d² linear system is solved directly
    (vec S, Kronecker products); above, by iterating the discrete Lyapunov equation
    (M is small when η tr H / B is). Raises ValueError if no stationary law exists
    (the second moment diverges). Units θ².
    """
    X = np.asarray(X, dtype=float)
    r = np.asarray(residuals, dtype=float)
    n, d = X.shape
    G = X.T @ X / n
    H = G + l2 * np.eye(d)
    gi = X * r[:, None]
    gi = gi - gi.mean(0)
    sigma_star = gi.T @ gi / n
    kappa = 1.0 if replacement else (n - batch_size) / (n - 1)
    A = np.eye(d) - lr * H
    c = lr**2 / batch_size * kappa
    if d <= 40:
        K = np.einsum("ni,nj->nij", X, X).reshape(n, d * d)  # rows vec(x_i x_iᵀ)
        op = np.kron(A, A) + c * (K.T @ K / n - np.kron(G, G))
        if np.max(np.abs(np.linalg.eigvals(op))) >= 1:
            raise ValueError("SGD has no stationary second moment at this step size")
        S = np.linalg.solve(np.eye(d * d) - op, c * sigma_star.ravel()).reshape(d, d)
        return 0.5 * (S + S.T)
    S = scipy.linalg.solve_discrete_lyapunov(A, c * sigma_star)
    for _ in range(max_iter):
        q = np.einsum("ni,ij,nj->n", X, S, X)  # x_iᵀ S x_i
        M = (X * q[:, None]).T @ X / n - G @ S @ G
        S_new = scipy.linalg.solve_discrete_lyapunov(A, c * (sigma_star + M))
        S_new = 0.5 * (S_new + S_new.T)
        if np.max(np.abs(S_new - S)) <= tol * np.max(np.abs(S_new)):
            return S_new
        S = S_new
    raise RuntimeError("the stationary covariance did not converge (step too large?)")


# ------------------------------------------------------------------ checks against simulation
def cumulative_probability(grid: np.ndarray, density: np.ndarray) -> np.ndarray:
    """Distribution function F(θ_j) = ∫_{θ_0}^{θ_j} p / ∫_{θ_0}^{θ_n} p of a density given on
    ``grid``, by the trapezoid rule and normalised so that F = 0 at the first point and 1 at
    the last (dimensionless, same shape as ``grid``)."""
    x = np.asarray(grid, dtype=float)
    p = np.asarray(density, dtype=float)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (p[1:] + p[:-1]) * np.diff(x))])
    return cdf / cdf[-1]


def equiprobable_edges(grid: np.ndarray, density: np.ndarray, n_bins: int) -> np.ndarray:
    """Edges e_0 < … < e_K of K = ``n_bins`` bins of equal probability 1/K under ``density``
    (the inverse of :func:`cumulative_probability` at b/K, linear between grid points), the
    outer two set to ∓∞ so that every sample falls in a bin. Units of θ; shape (K + 1,)."""
    edges = np.interp(np.linspace(0, 1, n_bins + 1), cumulative_probability(grid, density), grid)
    edges[0], edges[-1] = -np.inf, np.inf
    return edges


def bin_probabilities(grid: np.ndarray, density: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Probabilities q_b = F(e_{b+1}) − F(e_b) of the bins between ``edges`` under ``density``
    (F of :func:`cumulative_probability`; infinite outer edges stand for the grid's ends).
    Dimensionless, shape (len(edges) − 1,), summing to one."""
    x = np.asarray(grid, dtype=float)
    inner = np.concatenate([[x[0]], np.asarray(edges, dtype=float)[1:-1], [x[-1]]])
    return np.diff(np.interp(inner, x, cumulative_probability(x, density)))


def steady_state_l1_error(grid: np.ndarray, dloss, diffusion, refine: int = 8) -> float:
    """L1 distance ``Σ_j |p_grid − p_exact| h`` between the 1-D grid steady state
    ``fp_steady_state(fp_operator_1d(grid, dloss, diffusion))`` and the closed form
    :func:`stationary_density_1d`, the latter integrated on a grid ``refine`` times finer
    (so its own O(h²) trapezoid error is refine² times smaller) and read at the grid's
    points. Dimensionless; O(h²) for smooth L' and D."""
    x = np.asarray(grid, dtype=float)
    p_grid = fp_steady_state(fp_operator_1d(x, dloss, diffusion))
    fine = np.linspace(x[0], x[-1], refine * (x.size - 1) + 1)
    p_closed = stationary_density_1d(fine, dloss, diffusion)[::refine]
    return float(np.sum(np.abs(p_grid - p_closed)) * (x[1] - x[0]))


def sgd_squared_deviation(problem, lr: float, batch_size: int, curvature: float,
                          n_replicas: int, *, replacement: bool = False,
                          seed: int = 0) -> np.ndarray:
    """Each replica's time average of (θ − θ*)² in the stationary state of SGD on a
    one-dimensional quadratic ``problem`` (a FiniteSumProblem with ``minimizer()``) of
    curvature h = ``curvature``, units θ²; shape (``n_replicas``,).

    The mean relaxes as (1 − ηh)^k, so the run is measured in relaxation times
    τ = ⌈1/min(ηh, 2 − ηh)⌉ steps: 10 τ of burn-in from θ*, then 30 snapshots 2 τ apart
    (nearly independent). The replicas are independent, so the mean and standard error
    over them estimate the stationary variance and its error.
    """
    from sgdtemp.dynamics import simulate_sgd

    eta_h = lr * curvature
    relax = int(np.ceil(1 / min(eta_h, 2 - eta_h)))
    every = 2 * relax
    theta_star = problem.minimizer()
    run = simulate_sgd(problem, theta_star, lr, batch_size, 10 * relax + 30 * every,
                       n_replicas=n_replicas, replacement=replacement, record_every=every,
                       burn_in=10 * relax, seed=seed)
    return ((run.snapshots[..., 0] - theta_star[0]) ** 2).mean(0)


def banana_loss(theta: np.ndarray) -> np.ndarray:
    """Symmetric double well with a curved valley, θ of shape (..., 2):

        V(θ) = ¼(θ₁² − 1)² + ½(θ₂ − ½θ₁²)²,

    minima at θ = (±1, ½) (V = 0), saddle at (0, 0) (V = ¼). Shape (...)."""
    th = np.asarray(theta, dtype=float)
    return 0.25 * (th[..., 0] ** 2 - 1) ** 2 + 0.5 * (th[..., 1] - 0.5 * th[..., 0] ** 2) ** 2


def banana_grad(theta: np.ndarray) -> np.ndarray:
    """Gradient of :func:`banana_loss`, shape (..., 2): with v = θ₂ − ½θ₁²,
    ∂₁V = θ₁(θ₁² − 1) − vθ₁ and ∂₂V = v."""
    th = np.asarray(theta, dtype=float)
    x, v = th[..., 0], th[..., 1] - 0.5 * th[..., 0] ** 2
    out = np.empty_like(th)
    out[..., 0] = x * (x * x - 1) - v * x
    out[..., 1] = v
    return out


def on_mesh(f):
    """The (X, Y) → (f₁, f₂) callable that :func:`fp_operator_2d` takes, made from a
    function ``f`` of stacked points θ (..., 2) → (..., 2) (a gradient or a diagonal
    diffusion): (X, Y) ↦ f(stack(X, Y)) with the component axis moved first."""
    return lambda X, Y: np.moveaxis(f(np.stack([X, Y], -1)), -1, 0)


def spectral_gap(op: FPOperator) -> float:
    """Spectral gap λ₁ = −Re μ₁ of a grid generator: minus its eigenvalue closest to zero after
    the stationary one (μ₀ = 0). Units 1/time; exp(−λ₁ t) is how fast the slowest mode of an
    initial density decays (ARPACK shift-invert near zero)."""
    mu = spla.eigs(op.matrix.tocsc(), k=2, sigma=1e-8, which="LM", return_eigenvectors=False)
    return float(-np.sort(mu.real)[0])


def grid_mean(p: np.ndarray, field, cell_volume: float) -> float:
    """Expectation Σ p·f·ΔV of ``field`` f (an array on the grid, or a boolean mask: then the
    probability of the region) under the grid density ``p`` (units 1/θ^d, cell volume ΔV)."""
    return float(np.sum(p * field) * cell_volume)


def between_well_difference(p: np.ndarray, field, right: np.ndarray) -> float:
    """``|E[f | right] − E[f | not right]|`` under the grid density ``p``, with ``right`` a boolean
    mask of one well: how much a mean of f moves when probability moves between the wells
    (units of f)."""
    f = np.asarray(field, float)
    return float(abs(np.sum(p * f * right) / np.sum(p * right)
                     - np.sum(p * f * ~right) / np.sum(p * ~right)))


def quadratic_excess_loss(snapshots: np.ndarray, theta_star: np.ndarray,
                          hessian: np.ndarray) -> np.ndarray:
    """Each replica's time average of L(θ) − L* = ½ δᵀHδ, δ = θ − θ*, exact for a quadratic
    loss with Hessian H. ``snapshots`` has shape (K, R, d) (K times, R replicas); returns (R,),
    units of the loss."""
    delta = np.asarray(snapshots) - theta_star
    return 0.5 * np.einsum("kri,ij,krj->kr", delta, hessian, delta).mean(0)


def sgd_excess_loss(problem, lr: float, batch_size: int, n_replicas: int, *,
                    seed: int = 0) -> np.ndarray:
    """Each replica's time average of the excess loss L(θ) − L* in the stationary state of
    SGD (minibatches drawn with replacement) on a quadratic ``problem`` (e.g. linear
    regression: ``minimizer()`` and ``hessian(θ)``), units of the loss; shape (``n_replicas``,).

    The slowest direction relaxes in τ = ⌈1/(η λ_min)⌉ steps and the variance settles at
    rate 2ηλ, so after 6 τ of burn-in from θ* the loss is recorded every τ steps, 20 times,
    and averaged by :func:`quadratic_excess_loss`. Replicas are independent.
    """
    from sgdtemp.dynamics import simulate_sgd

    theta_star = problem.minimizer()
    H = problem.hessian(theta_star)
    relax = int(np.ceil(1 / (lr * np.linalg.eigvalsh(H).min())))
    run = simulate_sgd(problem, theta_star, lr, batch_size, 6 * relax + 20 * relax,
                       n_replicas=n_replicas, replacement=True, record_every=relax,
                       burn_in=6 * relax, seed=seed)
    return quadratic_excess_loss(run.snapshots, theta_star, H)
