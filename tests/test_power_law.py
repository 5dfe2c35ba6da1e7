"""Tests of sgdtemp.power_law: exact formulas to rounding, estimators and SGD statistically."""

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import digamma

from sgdtemp import power_law as pl
from sgdtemp.dynamics import simulate_sgd
from sgdtemp.regression import LinearRegression


# ---------------------------------------------------------------- exact results
@pytest.mark.parametrize("lr,B,h", [(0.1, 1, 1.0), (0.03, 4, 2.5), (0.2, 2, 0.7)])
def test_power_law_has_zero_flux(lr, B, h):
    """p = L^-φ with φ = 1 + B/(ηh) makes the 1-D Fokker–Planck flux
    J = −p L' − d(Dp)/du vanish identically for D = T h L (T = η/B)."""
    T, L_star = lr / B, 0.4
    phi = pl.power_law_exponent(lr, B, h)
    u = np.linspace(-3, 3, 101)
    L = L_star + 0.5 * h * u**2
    dL = h * u
    p = L ** -phi
    # d(D p)/du = T h d(L^(1−φ))/du = T h (1 − φ) L^(−φ) L'  (exact derivative)
    flux = -p * dL - T * h * (1 - phi) * L ** -phi * dL
    assert np.max(np.abs(flux)) <= 1e-12 * np.max(np.abs(p * dL))


def test_stationary_density_quadrature_is_the_power_law():
    """The generic zero-flux quadrature with D ∝ L reproduces L^-φ (trapezoid error O(dx²))."""
    lr, B, h, L_star = 0.1, 1, 1.3, 0.5
    u = np.linspace(-4, 4, 400_001)
    L = L_star + 0.5 * h * u**2
    p = pl.stationary_density_1d(u, -h * u, (lr / B) * h * L)
    exact = pl.power_law_density(u[:, None], L_star, h, pl.power_law_exponent(lr, B, h))
    exact /= np.trapezoid(exact, u)  # same finite window
    assert np.max(np.abs(p - exact)) <= 1e-8 * exact.max()


@pytest.mark.parametrize("dim", [1, 2, 3])
def test_power_law_normaliser(dim):
    phi, a = 4.3, 0.7
    # ∫ (1 + a r²)^-φ dᵈu = S_d ∫ r^(d−1) (1 + a r²)^-φ dr, S_d = 2π^(d/2)/Γ(d/2)
    from scipy.special import gamma
    radial, _ = quad(lambda r: r ** (dim - 1) * (1 + a * r * r) ** -phi, 0, np.inf,
                     epsabs=0, epsrel=1e-12)
    numeric = np.log(2 * np.pi ** (dim / 2) / gamma(dim / 2) * radial)
    assert pl.power_law_log_normaliser(phi, a, dim) == pytest.approx(numeric, rel=1e-10)


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_phi_from_log_moment_inverts_the_moment(dim):
    for phi in (dim / 2 + 0.3, 3.0 + dim, 40.0):
        S = digamma(phi) - digamma(phi - dim / 2)
        assert pl.phi_from_log_moment(S, dim) == pytest.approx(phi, rel=1e-9)


def test_log_moment_of_the_power_law():
    """E[log(1 + a u²)] under (1 + a u²)^-φ equals ψ(φ) − ψ(φ − ½) (the MLE equation)."""
    phi, a = 3.7, 2.0
    w = lambda u: (1 + a * u * u) ** -phi  # noqa: E731
    Z = quad(w, -np.inf, np.inf, epsrel=1e-12)[0]
    S = quad(lambda u: w(u) * np.log1p(a * u * u), -np.inf, np.inf, epsrel=1e-12)[0] / Z
    assert S == pytest.approx(digamma(phi) - digamma(phi - 0.5), rel=1e-9)


def test_exponent_formulas():
    assert pl.power_law_exponent(0.1, 2, 4.0) == pytest.approx(6.0)
    assert pl.escape_exponent(0.1, 1, 1.0, 1) == pytest.approx(10.5)
    assert pl.escape_exponent(0.1, 1, 1.0, 8) == pytest.approx(7.0)
    assert pl.loss_density_exponent(0.1, 1, 1.0, 4) == pytest.approx(11.0 - 2 + 1)
    assert pl.gaussian_escape_exponent(0.1, 1, 1.0, 1) == pytest.approx(5.5)


@pytest.mark.parametrize("dim", [1, 2, 4])
@pytest.mark.parametrize("model,exponent", [("paper", pl.escape_exponent),
                                            ("gaussian", pl.gaussian_escape_exponent)])
def test_mfpt_grows_with_the_predicted_power(dim, model, exponent):
    """The quadrature's log-log slope at c ≫ 1 tends to the derived asymptotic exponent
    (corrections are O(1/c); at c ~ 1e4 they are below 1e-2 in the slope)."""
    lr, B, h, L_star = 0.25, 1, 1.0, 0.5
    c = np.array([1e4, 2e4])
    tau = pl.mean_first_passage_time(c, h, L_star, lr / B, dim, model, n_grid=2_000_001)
    slope = pl.loglog_slope(c, tau)
    assert slope == pytest.approx(exponent(lr, B, h, dim), abs=0.02)


def test_gibbs_mfpt_is_exponential_in_delta_L():
    """Constant noise in 1-D: τ ≈ Z/(D p_s(ρ_c)·h ρ_c/D) for a high level, so
    log τ = (c − 1) B/(ηh) − ½ log(c − 1) + const + O(1/(c−1)) (Arrhenius in ΔL)."""
    lr, B, h, L_star = 0.25, 1, 1.0, 0.5
    tau = pl.mean_first_passage_time(np.array([5.0, 6.0]), h, L_star, lr / B, 1, "gibbs")
    predicted = B / (lr * h) - 0.5 * np.log(5.0 / 4.0)
    assert np.log(tau[1] / tau[0]) == pytest.approx(predicted, abs=0.02)


def test_gaussian_input_noise_identity():
    """Σ(θ) = 2L H + ∇L∇Lᵀ for Gaussian inputs (Isserlis), checked on a large sample:
    entries of Σ have relative standard error ≈ sqrt(Var(r²x_jx_k)/N)/Σ_jk ≲ 0.01 at
    N = 2e5, so 0.05 of the largest entry is a 5-s.e. bound."""
    rng = np.random.default_rng(1)
    prob = LinearRegression.gaussian(200_000, 3, noise_std=0.8, rng=rng)
    theta = prob.minimizer() + np.array([0.6, -0.3, 0.2])
    models = pl.noise_covariance_models(prob, theta)
    scale = np.abs(models["measured"]).max()
    assert np.abs(models["measured"] - models["2LH+ggT"]).max() <= 0.05 * scale
    # ...while 2LH alone misses the ∇L∇Lᵀ term, which is resolved here
    assert np.abs(models["measured"] - models["2LH"]).max() > 0.1 * scale


def test_noise_along_matches_full_covariance():
    rng = np.random.default_rng(2)
    prob = LinearRegression.gaussian(500, 3, rng=rng)
    theta = rng.standard_normal(3)
    n = np.array([1.0, 2.0, -1.0])
    val, boot = pl.noise_along(prob, theta, n, n_boot=5, rng=0)
    n = n / np.linalg.norm(n)
    assert val == pytest.approx(n @ prob.noise_covariance(theta) @ n, rel=1e-12)
    assert boot.shape == (5,)


def test_first_passage_steps_edge_cases():
    rng = np.random.default_rng(3)
    prob = LinearRegression.gaussian(200, 2, rng=rng)
    th = prob.minimizer()
    L0 = float(prob.loss(th))
    out = pl.first_passage_steps(prob, th, 0.05, 2, np.array([L0 * 0.5]), n_replicas=7,
                                 max_steps=3, seed=0)
    assert np.all(out == 1)  # already above the level after the first step
    out = pl.first_passage_steps(prob, th, 0.05, 2, np.array([L0 * 1e6]), n_replicas=7,
                                 max_steps=20, seed=0)
    assert np.all(np.isinf(out))


# ---------------------------------------------------------------- statistical checks
def test_fit_phi_recovers_the_exponent_from_exact_samples():
    """Draw iid samples of (1 + a u²)^-φ (a scaled Student t with ν = 2φ − 1) and fit φ:
    the MLE is consistent, so it lands within 4 bootstrap standard errors."""
    rng = np.random.default_rng(4)
    phi, L_star, h = 3.5, 0.5, 2.0
    a = h / (2 * L_star)
    nu = 2 * phi - 1
    u = rng.standard_t(nu, size=(200, 100, 1)) / np.sqrt(a * nu)
    fit = pl.fit_phi(u, L_star, h, n_boot=300, rng=5)
    assert abs(fit.phi - phi) <= 4 * fit.stderr
    assert fit.stderr < 0.1 * phi  # the test has power


def test_sgd_stationary_variance_matches_exact_discrete_recursion():
    """1-D SGD with replacement: the stationary variance is exactly
    m = η Σ*/B / (2h − ηh² − ηA/B) with A = Var_i(x_i²) and Σ* = mean(x_i² e_i²)
    (e_i: residual at θ*; the cross term mean(x_i³ e_i) is included below).
    Tolerance: 4 standard errors of the replica average."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((5000, 1))
    y = 0.3 * X[:, 0] + rng.standard_normal(5000)
    prob = LinearRegression(X, y)
    th = prob.minimizer()
    x, e = X[:, 0], y - X[:, 0] * th[0]
    h = np.mean(x**2)
    A = np.var(x**2)
    S0 = np.mean(x**2 * e**2)
    lr, B = 0.1, 2
    m_exact = lr * S0 / B / (2 * h - lr * h**2 - lr * A / B)
    run = simulate_sgd(prob, th, lr, B, 4000, n_replicas=1000, replacement=True,
                       record_every=10, burn_in=200, seed=7)
    u2 = ((run.snapshots - th) ** 2)[..., 0].mean(0)  # per replica
    se = u2.std(ddof=1) / np.sqrt(u2.size)
    # The mean iterate's offset from θ* is O(η mean(x³e)/h), its square negligible here.
    assert abs(u2.mean() - m_exact) <= 4 * se


# ---------------------------------------------------------------- chapter helpers
def test_whitened_regression_has_identity_hessian():
    prob = pl.whitened_regression(500, 3, 0.7, np.random.default_rng(8))
    assert np.allclose(prob.hessian(prob.minimizer()), np.eye(3), atol=1e-12)
    # the loss floor is about σ²/2 (residual variance of 500 examples: a 10 % band)
    assert float(prob.loss(prob.minimizer())) == pytest.approx(0.7**2 / 2, rel=0.1)


def test_orthonormal_pair():
    n, m = pl.orthonormal_pair(5, np.random.default_rng(9))
    assert np.linalg.norm(n) == pytest.approx(1, abs=1e-14)
    assert np.linalg.norm(m) == pytest.approx(1, abs=1e-14)
    assert abs(n @ m) < 1e-14


def test_noise_ratio_rows_place_the_points_and_predict_exactly():
    """The points sit at ΔL = r L* (H = I), the predictions are the closed forms, and the
    ratios equal nᵀΣn / 2L computed from the full covariance."""
    rng = np.random.default_rng(10)
    prob = pl.whitened_regression(2000, 3, 1.0, rng)
    th = prob.minimizer()
    n, m = pl.orthonormal_pair(3, rng)
    L_star = float(prob.loss(th))
    rows = pl.noise_ratio_rows(prob, th, n, m, [0.1, 2.0], n_boot=20, rng=rng)
    for row in rows:
        r, L = row["r"], row["L"]
        assert L - L_star == pytest.approx(r * L_star, rel=1e-9)
        assert row["predicted_radial"] == pytest.approx(1 + r / (1 + r), rel=1e-9)
        assert row["predicted_floor"] == pytest.approx((1 + 2 * r) / r, rel=1e-9)
        S = prob.noise_covariance(th + np.sqrt(2 * r * L_star) * n)
        assert row["radial"] == pytest.approx(n @ S @ n / (2 * L), rel=1e-10)
        assert row["tangential"] == pytest.approx(m @ S @ m / (2 * L), rel=1e-10)
        assert row["floor"] == pytest.approx(row["radial"] * L / (L - L_star), rel=1e-10)
        assert row["radial_se"] > 0 and row["frob_exact"] < row["frob_2LH"] + 0.2
    assert pl.noise_ratio_table(rows).count("\n") == len(rows) - 1


def test_small_eta_extrapolation_recovers_an_exact_quadratic():
    """With (φ − 1)ηh/B an exact quadratic in ηh on all but the largest η, the weighted fit
    returns its coefficients (the largest η, off the curve, is excluded)."""
    h, lrs, B = 2.0, [0.01, 0.02, 0.05, 0.1, 0.4], 2
    coef = np.array([0.3, -0.75, 1.0])
    fits = {}
    for lr in lrs:
        y = np.polyval(coef, lr * h) + (5.0 if lr == max(lrs) else 0.0)
        fits[B, lr] = pl.PhiFit(1 + y * B / (lr * h), 0.1 + lr, np.empty(0))
    out = pl.small_eta_extrapolation(fits, lrs, [B], h)[B]
    assert np.allclose(out["coef"], coef, atol=1e-10)
    assert np.allclose(out["se"], [(0.1 + lr) * lr * h / B for lr in lrs])


def test_variance_matched_phi():
    """φ = 3/2 + L*/(h m), with m averaged per replica (time-major flattening)."""
    u = np.array([[1.0, 2.0], [3.0, 2.0]]).ravel()  # 2 times × 2 replicas
    phi, se = pl.variance_matched_phi(u, 2, 0.5, 2.0)
    per_replica = np.array([(1 + 9) / 2, (4 + 4) / 2])
    m = per_replica.mean()
    assert phi == pytest.approx(1.5 + 0.5 / (2.0 * m))
    assert se == pytest.approx(0.5 / (2.0 * m**2) * per_replica.std(ddof=1) / np.sqrt(2))


def test_escape_levels_hit_the_target_times():
    h, L_star, lr, B, d, target = 1.0, 0.5, 0.1, 1, 2, 400
    levels = pl.escape_levels(h, L_star, lr, B, d, target)
    steps = pl.mean_first_passage_time(levels[[0, -1]], h, L_star, lr / B, d, "paper",
                                       n_grid=20_001, monitor_step=lr) / lr
    assert steps == pytest.approx([target / 30, target], rel=1e-6)
    assert np.all(np.diff(np.log(levels)) == pytest.approx(np.log(levels[1] / levels[0])))


def test_quadratic_loss_is_the_regression_loss():
    rng = np.random.default_rng(11)
    prob = LinearRegression.gaussian(300, 3, rng=rng)
    th = prob.minimizer()
    loss = pl.quadratic_loss(th, float(prob.loss(th)), prob.hessian(th))
    thetas = th + rng.standard_normal((5, 3))
    assert np.allclose(loss(thetas), prob.loss(thetas), rtol=1e-10)


def test_escape_summary_drops_unfinished_replicas_and_fits_the_slope():
    levels = np.array([1.5, 2.0, 3.0])
    steps = np.vstack([levels**4, 2 * levels**4, [1.0, 2.0, np.inf]])
    f = pl.escape_summary(levels, steps, 1.0, 0.5, 0.1, 1, 1, n_boot=10, rng=0)
    assert f["unfinished"] == 1
    assert f["slope"] == pytest.approx(4.0)
    assert f["slope_se"] == pytest.approx(0.0, abs=1e-10)  # every replica is an exact power law
    assert np.allclose(f["mean"], 1.5 * levels**4)
    assert set(f["theory"]) == set(pl.NOISE_MODELS)
    assert "d = 1" in pl.escape_summary_text(1, f, 0.1, 1)


def test_stationary_phi_fits_shapes_and_scale():
    """One fit per (B, η); samples are K·R displacements; φ̂ is of the order of 1 + B/(ηh)."""
    rng = np.random.default_rng(12)
    prob = pl.whitened_regression(2000, 1, 1.0, rng)
    th = prob.minimizer()
    fits, samples = pl.stationary_phi_fits(prob, th, [1], [0.2], relaxation_times=40,
                                           n_replicas=50, seed=0, n_boot=20, rng=rng)
    assert set(fits) == set(samples) == {(1, 0.2)}
    assert samples[1, 0.2].size % 50 == 0 and samples[1, 0.2].size >= 50 * 30
    assert 0.5 * 6 < fits[1, 0.2].phi < 1.5 * 6
