"""A one-parameter finite-sum loss with a sharp deep minimum and a wide shallow one.

Each example i is a pair (x_i, y_i) of numbers and its loss is

    ℓ_i(θ) = V(θ − x_i) + y_i f(θ),

    V(u) = ½ c u² − d_s exp(−(u − μ_s)²/(2 w_s²)) − d_w exp(−(u − μ_w)²/(2 w_w²)),
    f(θ) = θ + γ w_s sqrt(π/2) erf((θ − μ_s)/(sqrt(2) w_s)),   f'(θ) = 1 + γ exp(−(θ − μ_s)²/(2 w_s²)).

V is a weak bowl (curvature c) holding two Gaussian wells: a deep narrow one at μ_s and
a shallow broad one at μ_w. The location x_i translates V (examples disagree slightly on
where the wells are); the "label" y_i tilts the loss along the feature f (examples
disagree on the slope). The feature is steeper inside the sharp valley (gain γ), so the
examples disagree most where the loss is most curved — gradient noise that follows
curvature, as in networks where Σ ≈ H. The training loss L = (1/N) Σ ℓ_i and the
per-example gradient covariance Σ(θ) = Var_i ℓ_i'(θ) are computed exactly, as sums
over the N examples; minibatch noise in SGD is the real thing.

Data: x ~ N(0, x_scale²) and y ~ N(0, y_scale²); by default x_scale = 0, so every example
sits at the same location and the examples differ by their labels. Data are standardised
as in practice: the training means of x and y are subtracted from every set (train and
test), so the training loss has x̄ = ȳ = 0 whatever the seed, and a test set drawn
separately differs by its own sample means (a sampling shift). A domain-shifted test set
draws x with its mean moved by δ (with x_scale = 0: x_i = δ exactly).

The full-data sums are grouped by distinct x value, so L, L', L'' and Σ on a grid cost
O(grid × distinct x), not O(grid × N); minibatch gradients are still means over the
drawn examples.

Units: θ and x dimensionless; losses in "loss units"; Σ in loss².
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import brentq
from scipy.special import erf

from sgdtemp.landscapes import FiniteSumProblem


@dataclass(frozen=True)
class TwoMinimaShape:
    """The per-example potential V and the noise feature f (see module docstring).

    Defaults: sharp well at μ_s = −1.4 (depth 1, width 0.4), wide well at μ_w = 0.2
    (depth 0.3, width 0.6), bowl curvature 0.2, feature gain γ = 0.5 (the noise
    amplitude is 1.5 times larger in the sharp valley). ``x_scale``, ``y_scale``: standard
    deviations of the data x_i, y_i.
    """

    confinement: float = 0.2
    sharp_depth: float = 1.0
    sharp_width: float = 0.4
    sharp_center: float = -1.4
    wide_depth: float = 0.3
    wide_width: float = 0.6
    wide_center: float = 0.2
    noise_gain: float = 0.5
    x_scale: float = 0.0
    y_scale: float = 25.0


def _v_derivs(u: np.ndarray, s: TwoMinimaShape):
    """V(u), V'(u), V''(u) elementwise."""
    zs = (u - s.sharp_center) / s.sharp_width
    zw = (u - s.wide_center) / s.wide_width
    es = s.sharp_depth * np.exp(-0.5 * zs * zs)
    ew = s.wide_depth * np.exp(-0.5 * zw * zw)
    v = 0.5 * s.confinement * u * u - es - ew
    dv = s.confinement * u + es * zs / s.sharp_width + ew * zw / s.wide_width
    d2v = (s.confinement + es * (1 - zs * zs) / s.sharp_width ** 2
           + ew * (1 - zw * zw) / s.wide_width ** 2)
    return v, dv, d2v


def _v_prime(u: np.ndarray, s: TwoMinimaShape) -> np.ndarray:
    """V'(u) alone (the SGD hot path)."""
    zs = (u - s.sharp_center) / s.sharp_width
    zw = (u - s.wide_center) / s.wide_width
    return (s.confinement * u + (s.sharp_depth / s.sharp_width) * zs * np.exp(-0.5 * zs * zs)
            + (s.wide_depth / s.wide_width) * zw * np.exp(-0.5 * zw * zw))


def _f_prime(theta: np.ndarray, s: TwoMinimaShape) -> np.ndarray:
    """f'(θ) = 1 + γ exp(−(θ − μ_s)²/(2 w_s²))."""
    z = (theta - s.sharp_center) / s.sharp_width
    return 1.0 + s.noise_gain * np.exp(-0.5 * z * z)


def _f_derivs(theta: np.ndarray, s: TwoMinimaShape):
    """f(θ), f'(θ), f''(θ) elementwise."""
    z = (theta - s.sharp_center) / s.sharp_width
    bump = s.noise_gain * np.exp(-0.5 * z * z)
    f = theta + s.noise_gain * s.sharp_width * np.sqrt(np.pi / 2) * erf(z / np.sqrt(2))
    return f, 1.0 + bump, -bump * z / s.sharp_width


@dataclass(frozen=True)
class Basins:
    """Critical points of L: the sharp minimum, the barrier top and the wide minimum
    (θ values) with L, L'' and Σ at each."""

    sharp: float
    barrier: float
    wide: float
    loss: dict
    curvature: dict
    sigma: dict

    def summary(self) -> str:
        """One line per critical point: θ, L, L'' and Σ there (for printing)."""
        return "\n".join(
            f"{name:8s} θ = {getattr(self, name):+.3f}  L = {self.loss[name]:+.3f}  "
            f"L'' = {self.curvature[name]:+.3f}  Σ = {self.sigma[name]:.1f}"
            for name in ("sharp", "barrier", "wide"))


class TwoMinimaProblem(FiniteSumProblem):
    """ℓ_i(θ) = V(θ − x_i) + y_i f(θ) over the examples (x_i, y_i); dim = 1.

    Besides the :class:`.FiniteSumProblem` interface (θ of shape (..., 1)), the exact
    scalar functions :meth:`loss_1d`, :meth:`dloss_1d`, :meth:`d2loss_1d` and
    :meth:`sigma_1d` take θ of any shape (a grid) and return the same shape.
    """

    dim = 1

    def __init__(self, x: np.ndarray, y: np.ndarray, shape: TwoMinimaShape = TwoMinimaShape()):
        self.x = np.asarray(x, dtype=float).ravel()
        self.y = np.asarray(y, dtype=float).ravel()
        if self.x.shape != self.y.shape or self.x.size < 2:
            raise ValueError("x and y must be 1-D arrays of equal length >= 2")
        self.shape = shape
        self.n_examples = self.x.size
        # All locations equal (the default data): a shortcut for minibatch gradients.
        self._single_x = float(self.x[0]) if np.all(self.x == self.x[0]) else None

    # ---- per-example quantities (FiniteSumProblem interface)
    def _select(self, idx):
        if idx is None:
            return self.x, self.y
        return self.x[idx], self.y[idx]

    def example_losses(self, theta, idx=None):
        x, y = self._select(idx)
        th = np.asarray(theta, dtype=float)[..., :1]  # (..., 1) broadcasts over examples
        v, _, _ = _v_derivs(th - x, self.shape)
        f, _, _ = _f_derivs(th, self.shape)
        return v + y * f

    def example_grads(self, theta, idx=None):
        x, y = self._select(idx)
        th = np.asarray(theta, dtype=float)[..., :1]
        _, dv, _ = _v_derivs(th - x, self.shape)
        _, df, _ = _f_derivs(th, self.shape)
        return (dv + y * df)[..., None]

    def minibatch_grad(self, theta, idx):
        """ĝ = (1/b) Σ_{i∈idx} ℓ_i'(θ) = mean_idx V'(θ − x_i) + (mean_idx y_i) f'(θ), shape (..., 1).

        Same value as the base class, computed faster: only V' and f' are evaluated, and
        when every x_i is equal (the default data) mean_idx V'(θ − x_i) = V'(θ − x_1)
        exactly, so the cost per replica is one gather of the b labels.
        """
        th = np.asarray(theta, dtype=float)[..., :1]
        df = _f_prime(th, self.shape)
        ybar = self.y[idx].mean(-1, keepdims=True)
        if self._single_x is not None:
            dv = _v_prime(th - self._single_x, self.shape)
        else:
            dv = _v_prime(th - self.x[idx], self.shape).mean(-1, keepdims=True)
        return dv + ybar * df

    def hessian(self, theta):
        th = np.asarray(theta, dtype=float)[..., 0]
        return self.d2loss_1d(th)[..., None, None]

    def loss(self, theta):
        return self.loss_1d(np.asarray(theta, dtype=float)[..., 0])

    def grad(self, theta):
        return self.dloss_1d(np.asarray(theta, dtype=float)[..., 0])[..., None]

    def noise_covariance(self, theta):
        return self.sigma_1d(np.asarray(theta, dtype=float)[..., 0])[..., None, None]

    # ---- exact scalar functions on grids
    # The sums over examples are grouped by distinct x value: with counts n_u and label
    # sums over each group, every full-data quantity is an exact weighted sum over the
    # distinct x (one term when all x are equal), however many examples there are.
    def _groups(self):
        if not hasattr(self, "_grp"):
            ux, inv = np.unique(self.x, return_inverse=True)
            n = self.n_examples
            w = np.bincount(inv, minlength=ux.size) / n
            ysum = np.bincount(inv, weights=self.y, minlength=ux.size) / n
            self._grp = (ux, w, ysum, float(self.y.mean()), float(np.mean(self.y ** 2)))
        return self._grp

    def _v_means(self, theta, chunk=2 ** 21):
        """Σ_u w_u (V, V', V'', V'²)(θ − u) and Σ_u ysum_u V'(θ − u), each shaped like θ."""
        ux, w, ysum, _, _ = self._groups()
        th = np.asarray(theta, dtype=float)
        flat = th.ravel()
        out = np.empty((5, flat.size))
        step = max(1, chunk // ux.size)
        for i in range(0, flat.size, step):
            t = flat[i:i + step, None]
            v, dv, d2v = _v_derivs(t - ux, self.shape)
            out[:, i:i + step] = (v @ w, dv @ w, d2v @ w, (dv * dv) @ w, dv @ ysum)
        return out.reshape((5,) + th.shape)

    def exact_1d(self, theta) -> dict:
        """L, L', L'' and Σ at the points θ (any shape), in one pass: a dict of arrays
        shaped like θ with keys ``loss``, ``dloss``, ``d2loss``, ``sigma``."""
        th = np.asarray(theta, dtype=float)
        _, ybar, y2 = self._groups()[2:]
        f, df, d2f = _f_derivs(th, self.shape)
        v, dv, d2v, dv2, ydv = self._v_means(th)
        dloss = dv + ybar * df
        # Σ = E_i[ℓ_i'²] − L'², with ℓ_i' = V'(θ − x_i) + y_i f'(θ).
        second = dv2 + 2 * df * ydv + df * df * y2
        sigma = np.maximum(second - dloss * dloss, 0.0)
        return {"loss": v + ybar * f, "dloss": dloss, "d2loss": d2v + ybar * d2f,
                "sigma": sigma}

    def loss_1d(self, theta):
        """L(θ) = (1/N) Σ_i [V(θ − x_i) + y_i f(θ)] = mean_i V(θ − x_i) + ȳ f(θ)."""
        return self.exact_1d(theta)["loss"]

    def dloss_1d(self, theta):
        """L'(θ) = mean_i V'(θ − x_i) + ȳ f'(θ)."""
        return self.exact_1d(theta)["dloss"]

    def d2loss_1d(self, theta):
        """L''(θ) = mean_i V''(θ − x_i) + ȳ f''(θ) (the 1×1 Hessian)."""
        return self.exact_1d(theta)["d2loss"]

    def sigma_1d(self, theta):
        """Σ(θ) = (1/N) Σ_i (ℓ_i'(θ) − L'(θ))², ℓ_i' = V'(θ − x_i) + y_i f'(θ), in loss²."""
        return self.exact_1d(theta)["sigma"]

    # ---- critical points
    def basins(self, lo: float = -2.5, hi: float = 1.5, n_grid: int = 1401) -> Basins:
        """The two minima and the barrier between them (roots of L' by Brent's method,
        bracketed on a grid), with L, L'' and Σ there. Raises if L has not exactly two
        minima on [lo, hi]."""
        g = np.linspace(lo, hi, n_grid)
        d = self.dloss_1d(g)
        roots = []
        for i in np.nonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)[0]:
            roots.append(brentq(lambda t: float(self.dloss_1d(np.array(t))), g[i], g[i + 1],
                                xtol=1e-13, rtol=1e-13))
        curv = [float(self.d2loss_1d(np.array(r))) for r in roots]
        mins = [r for r, c in zip(roots, curv) if c > 0]
        maxs = [r for r, c in zip(roots, curv) if c < 0]
        if len(mins) != 2 or len(maxs) != 1:
            raise ValueError(f"expected two minima and one barrier, found minima {mins} "
                             f"and maxima {maxs}")
        ca, cb = (float(self.d2loss_1d(np.array(m))) for m in mins)
        sharp, wide = (mins[0], mins[1]) if ca >= cb else (mins[1], mins[0])
        pts = {"sharp": sharp, "barrier": maxs[0], "wide": wide}
        arr = np.array(list(pts.values()))
        L, H, S = self.loss_1d(arr), self.d2loss_1d(arr), self.sigma_1d(arr)
        return Basins(sharp, maxs[0], wide,
                      loss=dict(zip(pts, map(float, L))),
                      curvature=dict(zip(pts, map(float, H))),
                      sigma=dict(zip(pts, map(float, S))))


# ------------------------------------------------------------------ data sets
def draw_examples(rng: np.random.Generator, n: int, shape: TwoMinimaShape,
                  x_mean: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """n raw examples: x ~ N(x_mean, x_scale²), y ~ N(0, y_scale²)."""
    x = x_mean + shape.x_scale * rng.standard_normal(n)
    y = shape.y_scale * rng.standard_normal(n)
    return x, y


@dataclass
class TwoMinimaData:
    """Train problem and two test problems built from independent draws.

    ``test``: same distribution as train (sampling shift only); ``test_shifted``: x
    drawn with its mean moved by ``domain_shift`` (sampling + domain shift). All three
    are centred with the *training* means of x and y.
    """

    train: TwoMinimaProblem
    test: TwoMinimaProblem
    test_shifted: TwoMinimaProblem
    domain_shift: float


def make_two_minima_data(n_train: int, n_test: int, seed: int, domain_shift: float = 0.0,
                         shape: TwoMinimaShape = TwoMinimaShape()) -> TwoMinimaData:
    """Draw train, test and domain-shifted test sets (independent, seeded) and centre
    them with the training means (standardisation fitted on the training set)."""
    if n_train < 2 or n_test < 2:
        raise ValueError("need at least two examples per set")
    rng = np.random.default_rng([seed, 20221])
    xtr, ytr = draw_examples(rng, n_train, shape)
    xte, yte = draw_examples(rng, n_test, shape)
    xsh, ysh = draw_examples(rng, n_test, shape, x_mean=domain_shift)
    mx, my = xtr.mean(), ytr.mean()
    mk = lambda x, y: TwoMinimaProblem(x - mx, y - my, shape)
    return TwoMinimaData(mk(xtr, ytr), mk(xte, yte), mk(xsh, ysh), float(domain_shift))


def with_shape(shape: TwoMinimaShape, **changes) -> TwoMinimaShape:
    """A copy of ``shape`` with some fields changed."""
    return replace(shape, **changes)


def basin_of(theta: np.ndarray, barrier: float, sharp: float) -> np.ndarray:
    """True where θ lies on the wide minimum's side of the barrier."""
    th = np.asarray(theta, dtype=float)
    return th > barrier if sharp < barrier else th < barrier



# ------------------------------------------------------------------ exact 1-D theory on a grid
# Broadie–Glasserman–Kou continuity correction: a diffusion monitored every η is first seen
# past a level as if the level were moved out by β sqrt(2Dη), β = −ζ(1/2)/sqrt(2π).
CONTINUITY_BETA = 0.5825971579390106


class ExactTheory:
    """Exact one-dimensional Fokker–Planck results for SGD on a two-minima loss, on a grid.

    The SDE is dθ = −L'(θ) dt + sqrt(2D) dW with D(θ) = ½ T Σ(θ) (T = η/B, Σ in loss²),
    time in SDE units t = kη. ``grid``: θ points (increasing); ``dloss``, ``sigma``: L' and
    Σ on it; ``basins``: the training loss's critical points. Nothing here simulates.
    """

    def __init__(self, grid: np.ndarray, dloss: np.ndarray, sigma: np.ndarray, basins: Basins):
        self.grid, self.dloss, self.sigma, self.basins = grid, dloss, sigma, basins
        self.is_wide = basin_of(grid, basins.barrier, basins.sharp)  # wide side of the barrier
        # Ψ(θ) = ∫^θ L'/Σ (cumulative trapezoid, Ψ = 0 at the grid's left end), so ∫ L'/D = 2Ψ/T.
        self.psi = np.concatenate([[0.0], np.cumsum(
            0.5 * (dloss[1:] / sigma[1:] + dloss[:-1] / sigma[:-1]) * np.diff(grid))])

    def psi_at(self, theta: float) -> float:
        """Ψ(θ) = ∫^θ L'/Σ, interpolated on the grid (units loss/loss² = 1/loss)."""
        return np.interp(theta, self.grid, self.psi)

    def density(self, T: float) -> np.ndarray:
        """Stationary density p(θ) ∝ exp(−∫ L'/D)/D with D = ½TΣ, on the grid (units 1/θ)."""
        from sgdtemp.fokker_planck import stationary_density_1d

        return stationary_density_1d(self.grid, self.dloss, 0.5 * T * self.sigma)

    def wide_mass(self, T: float) -> float:
        """Stationary probability of the wide basin, ∫_{wide side} p dθ (trapezoid)."""
        return float(np.trapezoid(np.where(self.is_wide, self.density(T), 0.0), self.grid))

    def laplace_threshold_temperature(self) -> float:
        """T⋆ = 4[Ψ(θ_w) − Ψ(θ_s)] / log(Σ_s k_s / (Σ_w k_w)): Laplace's estimate of the
        temperature at which the two basins hold equal mass."""
        b = self.basins
        dpsi = self.psi_at(b.wide) - self.psi_at(b.sharp)
        return 4 * dpsi / np.log(b.sigma["sharp"] * b.curvature["sharp"]
                                 / (b.sigma["wide"] * b.curvature["wide"]))

    def mfpt(self, T: float, start: float, target: float) -> float:
        """Exact mean first-passage time from ``start`` to ``target`` at temperature T (SDE time)."""
        from sgdtemp.fokker_planck import mean_first_passage_time_1d

        return mean_first_passage_time_1d(self.grid, self.dloss, 0.5 * T * self.sigma, start, target)

    def relaxation_time(self, T: float) -> float:
        """τ_rel = (1/τ_{s→w} + 1/τ_{w→s})⁻¹ from the exact mean first-passage times between
        the two minima (SDE time): the time scale on which the basin masses equilibrate."""
        b = self.basins
        t_sw = self.mfpt(T, b.sharp, b.wide)
        t_ws = self.mfpt(T, b.wide, b.sharp)
        return float(1.0 / (1.0 / t_sw + 1.0 / t_ws))

    def escape_times(self, T: float, lr: float) -> dict:
        """Predicted escape times from the sharp to the wide minimum at temperature T (SDE time).

        ``exact``: mean first-passage time of the SDE; ``pred``: the same with the target
        moved out by β sqrt(2 D(θ_w) η) (discrete monitoring, ``CONTINUITY_BETA``);
        ``kramers``: Laplace's asymptotic 2π/sqrt(k_s|k_b|) · sqrt(D_b/D_s) · exp(ΔΨ_D);
        ``barrier_D``: ΔΨ_D = 2[Ψ(θ_b) − Ψ(θ_s)]/T, the barrier in units of D.
        """
        from sgdtemp.fokker_planck import kramers_escape_time, mean_first_passage_time_1d

        b, grid = self.basins, self.grid
        D = 0.5 * T * self.sigma
        tau_exact = float(mean_first_passage_time_1d(grid, self.dloss, D, b.sharp, b.wide))
        target_shift = CONTINUITY_BETA * np.sqrt(2 * np.interp(b.wide, grid, D) * lr)
        tau_pred = float(mean_first_passage_time_1d(grid, self.dloss, D, b.sharp, b.wide + target_shift))
        D_s, D_b = 0.5 * T * b.sigma["sharp"], 0.5 * T * b.sigma["barrier"]
        barrier_D = 2 * (self.psi_at(b.barrier) - self.psi_at(b.sharp)) / T
        tau_kramers = kramers_escape_time(D_s * barrier_D, b.curvature["sharp"], b.curvature["barrier"],
                                          D_s) * np.sqrt(D_b / D_s)
        return dict(exact=tau_exact, pred=tau_pred, kramers=tau_kramers, barrier_D=barrier_D)

    def step_bias_of_test_loss(self, test: TwoMinimaProblem, T: float, lr: float) -> float:
        """First-order bias of E[L_test] from finite steps, signed (loss units).

        In a valley m of curvature k and noise Σ the SDE variance is S = TΣ/(2k); the
        discrete recursion inflates it by a relative (ηk/2)/(1 − ηk/2) (exact for a
        quadratic), which changes E[L_test] by about ½ L_test''(θ_m) · S · that fraction,
        with L_test'' taken where the replicas are (the training minimum θ_m; under a domain
        shift it can be negative there). Summed over the two valleys, weighted by their
        stationary mass. Not included: the O(η) transfer of mass between the basins.
        """
        from sgdtemp.shift import density_moments

        b, p = self.basins, self.density(T)
        out = 0.0
        for m, mask, name in ((b.sharp, ~self.is_wide, "sharp"), (b.wide, self.is_wide, "wide")):
            k, sig = b.curvature[name], b.sigma[name]
            mass = density_moments(self.grid, p, mask)[0]
            r = (lr * k / 2) / (1 - lr * k / 2)
            out += mass * 0.5 * float(test.d2loss_1d(np.array(m))) * (T * sig / (2 * k)) * r
        return float(out)

    def test_loss_decomposition(self, tests: dict, temperatures) -> list:
        """Basin-by-basin split of E[L_test] under the stationary density (see
        :func:`sgdtemp.shift.basin_decomposition_1d`): rows (test set, T, basin, terms), the
        basins split at the training barrier, θ*_test, L_test(θ*_test) and H from the test
        loss; ``terms["exact"]`` is the exact basin integral ∫_basin p L_test dθ."""
        from sgdtemp.shift import basin_decomposition_1d, expected_value

        rows = []
        for set_name, test in tests.items():
            test_b = test.basins()
            L_test = test.loss_1d(self.grid)
            for T in temperatures:
                p = self.density(T)
                for name, mask in (("sharp", ~self.is_wide), ("wide", self.is_wide)):
                    terms = basin_decomposition_1d(self.grid, p, mask, getattr(test_b, name),
                                                   test_b.loss[name], test_b.curvature[name],
                                                   getattr(self.basins, name))
                    terms["exact"] = expected_value(self.grid, p, L_test, mask)
                    rows.append((set_name, T, name, terms))
        return rows


def decomposition_table(rows) -> str:
    """The rows of :meth:`ExactTheory.test_loss_decomposition` as a fixed-width text table."""
    lines = [f"{'test set':15s} {'T':>9s} {'basin':6s} {'mass':>6s} {'L*test':>8s} {'½sHs':>8s} "
             f"{'bias':>8s} {'½tr HS':>8s} {'sum':>8s} {'exact':>8s}"]
    for set_name, T, name, t in rows:
        lines.append(f"{set_name:15s} {T:9.2e} {name:6s} {t['mass']:6.3f} {t['test_minimum']:+8.4f} "
                     f"{t['shift_curvature']:8.4f} {t['bias']:+8.4f} {t['covariance']:8.4f} "
                     f"{t['total']:+8.4f} {t['exact']:+8.4f}")
    return "\n".join(lines)


def crossing_temperature(temperatures, masses, level: float = 0.5) -> float:
    """First temperature at which ``masses`` crosses ``level``, interpolated linearly in
    log T between the two bracketing points; NaN if it never crosses."""
    temperatures, masses = np.asarray(temperatures), np.asarray(masses)
    cross = np.nonzero(np.diff(np.sign(masses - level)))[0]
    if not cross.size:
        return np.nan
    i = cross[0]
    return float(np.exp(np.interp(0.0, masses[i:i + 2] - level, np.log(temperatures[i:i + 2]))))


def stationary_run(problem: TwoMinimaProblem, basins: Basins, lr: float, batch_size: int,
                   tau: float, relaxation_times: float, n_replicas: int, seed):
    """SGD replicas (with-replacement minibatches) started at the barrier top and run for
    ``relaxation_times`` × ``tau`` SDE time (τ: the relaxation time), the first 3τ discarded
    and θ recorded every τ/4. Returns θ of shape (records K, replicas R) and each replica's
    time-averaged occupancy of the wide basin (shape (R,), independent across replicas)."""
    from sgdtemp.dynamics import simulate_sgd

    n_steps = int(np.ceil(relaxation_times * tau / lr))
    run = simulate_sgd(problem, np.array([basins.barrier]), lr, batch_size, n_steps,
                       n_replicas=n_replicas, replacement=True,
                       record_every=max(1, int(round(0.25 * tau / lr))),
                       burn_in=int(np.ceil(3 * tau / lr)), seed=seed)
    theta = run.snapshots[..., 0]  # (K, R)
    occ = basin_of(theta, basins.barrier, basins.sharp).mean(0)  # one value per replica
    return theta, occ


def quadratic_split_error(problem: TwoMinimaProblem, basins: Basins, shift: float, T: float,
                          n_grid: int = 20001) -> dict:
    """The quadratic test-loss split in the sharp basin against its exact value, for a test
    set made of the training examples moved by ``shift`` (a pure domain shift), under the
    stationary density at temperature T restricted to the sharp basin.

    Returns ``quadratic`` and ``exact`` (the excess E[L_test] − L_test(θ*_test) of the
    expansion and of the exact integral, loss units) and ``relative_error`` =
    ``|quadratic − exact| / exact`` excess.
    """
    from sgdtemp.fokker_planck import stationary_density_1d
    from sgdtemp.shift import basin_decomposition_1d, expected_value

    g = np.linspace(basins.sharp - 1.5, basins.barrier, n_grid)  # the sharp basin, finely
    ex = problem.exact_1d(g)
    moved = TwoMinimaProblem(problem.x + shift, problem.y, problem.shape)
    mb = moved.basins()
    p = stationary_density_1d(g, ex["dloss"], 0.5 * T * ex["sigma"])
    t = basin_decomposition_1d(g, p, None, mb.sharp, mb.loss["sharp"], mb.curvature["sharp"],
                               basins.sharp)
    exact = expected_value(g, p, moved.loss_1d(g))
    return dict(quadratic=t["total"] - mb.loss["sharp"], exact=exact - mb.loss["sharp"],
                relative_error=abs(t["total"] - exact) / (exact - mb.loss["sharp"]))


def chi_square_claim(claims, cid: str, statement: str, z, level: float = 0.999):
    """Add to ``claims`` the claim χ² = Σ z_i² ≤ the ``level`` quantile of χ²_k (k = len(z)),
    z_i = (measured − predicted)/s.e.: predicted k, tolerance bound − k, expected rate ``level``."""
    from sgdtemp import stats as st

    test = st.chi_square(z, level=level)
    return claims.check(cid, statement + f" (χ² over {test.dof}, {100 * level:g}% bound)",
                        predicted=float(test.dof), measured=test.stat,
                        tolerance=test.bound - test.dof, holds=test.holds, expected_rate=test.level)
