"""Tests of sgdtemp.fokker_planck: exact results exactly, numerics to their error order."""

import numpy as np
import pytest
import scipy.linalg

from sgdtemp import fokker_planck as fp
from sgdtemp.dynamics import simulate_sgd
from sgdtemp.regression import LinearRegression


def double_well_grad(x):
    return x**3 - x  # L = x⁴/4 − x²/2: minima ±1 (h = 2), saddle 0 (h = −1), ΔL = 1/4


# ------------------------------------------------------------------ discrete-time and OU
def test_discrete_variance_1d_closed_form_and_recursion():
    h, C, B = 1.7, 0.9, 4
    for lr in (0.01, 0.3, 1.1):
        S = fp.sgd_stationary_covariance_discrete(h, C, lr, B)[0, 0]
        assert S == pytest.approx(lr * C / (B * h * (2 - lr * h)), rel=1e-12)
        s = 0.0
        for _ in range(20000):  # iterate the variance recursion to its fixed point
            s = (1 - lr * h) ** 2 * s + lr**2 * C / B
        assert s == pytest.approx(S, rel=1e-10)
        # SDE value T C / (2h) is smaller by exactly the factor 1 − ηh/2.
        sde = fp.ou_stationary_covariance(h, C, lr / B)[0, 0]
        assert 1 - sde / S == pytest.approx(lr * h / 2, rel=1e-10)


def test_discrete_covariance_matrix_recursion_and_finite_n():
    rng = np.random.default_rng(0)
    M = rng.standard_normal((3, 3))
    H = M @ M.T / 3 + 0.5 * np.eye(3)
    C = np.cov(rng.standard_normal((3, 50)))
    lr, B, N = 0.2, 5, 40
    S = fp.sgd_stationary_covariance_discrete(H, C, lr, B, n_examples=N)
    A = np.eye(3) - lr * H
    Q = lr**2 * C / B * (N - B) / (N - 1)
    np.testing.assert_allclose(S, A @ S @ A.T + Q, atol=1e-14)
    X = np.zeros((3, 3))
    for _ in range(5000):
        X = A @ X @ A.T + Q
    np.testing.assert_allclose(X, S, rtol=1e-10)
    with pytest.raises(ValueError):
        fp.sgd_stationary_covariance_discrete(H, C, 10.0, B)  # unstable step


def test_ou_lyapunov():
    rng = np.random.default_rng(1)
    M = rng.standard_normal((4, 4))
    H = M @ M.T + np.eye(4)
    C = np.cov(rng.standard_normal((4, 30)))
    T = 0.01
    S = fp.ou_stationary_covariance(H, C, T)
    np.testing.assert_allclose(H @ S + S @ H, T * C, atol=1e-14)
    # Noise equal to the Hessian: S = (T/2) I and ½ tr(HS) = (T/4) tr H.
    S_h = fp.ou_stationary_covariance(H, H, T)
    np.testing.assert_allclose(S_h, T / 2 * np.eye(4), atol=1e-14)
    assert 0.5 * np.trace(H @ S_h) == pytest.approx(T / 4 * np.trace(H), rel=1e-12)


def _linear_regression_covariance_by_kronecker(X, r, lr):
    """B = 1 with replacement: the second-moment map written out as a d²×d² matrix."""
    n, d = X.shape
    I = np.eye(d)
    op = np.zeros((d * d, d * d))
    Q = np.zeros((d, d))
    for x, ri in zip(X, r):
        A = I - lr * np.outer(x, x)
        op += np.kron(A, A) / n
        Q += lr**2 * ri**2 * np.outer(x, x) / n
    vecS = np.linalg.solve(np.eye(d * d) - op, Q.ravel())
    return vecS.reshape(d, d)


def test_linear_regression_exact_covariance():
    problem = LinearRegression.gaussian(12, 3, noise_std=0.7, rng=3)
    theta_star = problem.minimizer()
    r = problem.residuals(theta_star)
    lr = 0.05
    S = fp.sgd_stationary_covariance_linear_regression(problem.X, r, lr, 1)
    np.testing.assert_allclose(S, _linear_regression_covariance_by_kronecker(problem.X, r, lr),
                               rtol=1e-9)
    with pytest.raises(ValueError):  # second moment diverges at a large step
        fp.sgd_stationary_covariance_linear_regression(problem.X, r, 1.0, 1)


# ------------------------------------------------------------------ closed-form densities
def test_gibbs_equals_stationary_density_with_constant_noise():
    x = np.linspace(-2.5, 2.5, 2001)
    loss = x**4 / 4 - x**2 / 2
    t_sigma2 = 0.3
    p_gibbs = fp.gibbs_density(x, loss, t_sigma2)
    p_1d = fp.stationary_density_1d(x, double_well_grad(x), 0.5 * t_sigma2)
    assert np.trapezoid(p_gibbs, x) == pytest.approx(1.0, abs=1e-12)
    # Both use the trapezoid rule; the ∫L'/D quadrature adds O(h²) error only.
    np.testing.assert_allclose(p_1d, p_gibbs, rtol=1e-4)


def test_effective_potential_has_log_d_term():
    x = np.linspace(-3, 3, 3001)
    D = 0.1 * (1 + x**2)
    phi = fp.effective_potential_1d(x, x, D)
    # ∫ x / (0.1 (1 + x²)) = 5 log(1 + x²); Φ = 5 log(1+x²) + log D + const = 6 log(1+x²) + const
    np.testing.assert_allclose(phi - phi[1500], 6 * np.log1p(x**2), atol=1e-5)
    assert np.trapezoid(np.exp(-phi), x) == pytest.approx(1.0, abs=1e-12)


# ------------------------------------------------------------------ grid solvers
def _grid_error_1d(n):
    dloss, diff = double_well_grad, (lambda x: 0.1 * (1 + 0.5 * x**2))
    x = np.linspace(-2.5, 2.5, n)
    p = fp.fp_steady_state(fp.fp_operator_1d(x, dloss, diff))
    exact = fp.stationary_density_1d(np.linspace(-2.5, 2.5, 16 * (n - 1) + 1), dloss, diff)[::16]
    return np.max(np.abs(p - exact))


def test_fp_1d_steady_state_converges_at_second_order():
    e1, e2, e3 = (_grid_error_1d(n) for n in (101, 201, 401))
    assert e3 < 1e-4
    # Halving h divides the error by 4 (second order) up to higher-order terms.
    assert e1 / e2 == pytest.approx(4, rel=0.05)
    assert e2 / e3 == pytest.approx(4, rel=0.05)


def test_fp_1d_array_input_matches_trapezoid_closed_form_to_rounding():
    # With arrays, faces get the average of L'/D: the steady state's ratio between
    # neighbours is then exactly the trapezoid rule used by the closed form.
    x = np.linspace(-2.5, 2.5, 301)
    g, D = double_well_grad(x), 0.1 * (1 + 0.5 * x**2)
    p = fp.fp_steady_state(fp.fp_operator_1d(x, g, D))
    exact = fp.stationary_density_1d(x, g, D)
    exact /= exact.sum() * (x[1] - x[0])  # same normalisation (cell sum) as the grid
    np.testing.assert_allclose(p, exact, rtol=1e-9)


def test_fp_operator_conserves_probability_and_evolves_to_steady_state():
    x = np.linspace(-2.5, 2.5, 101)
    op = fp.fp_operator_1d(x, double_well_grad, lambda z: 0.4 + 0 * z)
    np.testing.assert_allclose(np.asarray(op.matrix.sum(0)).ravel(), 0, atol=1e-9)
    p0 = np.exp(-((x - 1) ** 2) / 0.02)
    p0 /= p0.sum() * op.cell_volume
    ev = fp.fp_evolve(op, p0, 30.0, 3)
    np.testing.assert_allclose(ev.sum(1) * op.cell_volume, 1.0, atol=1e-10)
    p_ss = fp.fp_steady_state(op)
    assert np.max(np.abs(ev[-1] - p_ss)) < 1e-4 * p_ss.max()
    # Implicit Euler is first order in time: 10× smaller steps, ~10× smaller error.
    ref = fp.fp_evolve(op, p0, 1.0, 1)[-1]
    err = [np.max(np.abs(fp.fp_evolve(op, p0, 1.0, n, method="implicit")[-1] - ref))
           for n in (20, 200)]
    assert err[0] / err[1] == pytest.approx(10, rel=0.1)


def _grid_error_2d(n):
    gx = np.linspace(-2.5, 2.5, n)
    gy = np.linspace(-2.0, 2.0, n)
    op = fp.fp_operator_2d(gx, gy, lambda X, Y: (X**3 - X, 2 * Y), 0.15)
    p = fp.fp_steady_state(op)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    gibbs = fp.gibbs_density((gx, gy), (X**2 - 1) ** 2 / 4 + Y**2, 0.3)
    gibbs /= gibbs.sum() * op.cell_volume
    return np.max(np.abs(p - gibbs))


def test_fp_2d_isotropic_noise_gives_gibbs():
    e1, e2 = _grid_error_2d(41), _grid_error_2d(81)
    assert e2 < 3e-3
    assert e1 / e2 == pytest.approx(4, rel=0.15)  # second order in the grid step


def test_fp_2d_diagonal_noise_is_separable_product():
    # Separable L and D_x(x), D_y(y): the steady state is the product of the 1-D densities.
    gx = np.linspace(-2.5, 2.5, 61)
    gy = np.linspace(-1.5, 1.5, 41)
    Dx = lambda x: 0.1 * (1 + x**2)
    Dy = lambda y: 0.05 + 0 * y
    op = fp.fp_operator_2d(gx, gy, lambda X, Y: (X**3 - X, Y),
                           lambda X, Y: np.stack([Dx(X), Dy(Y)]))
    p = fp.fp_steady_state(op)
    px = fp.fp_steady_state(fp.fp_operator_1d(gx, double_well_grad, Dx))
    py = fp.fp_steady_state(fp.fp_operator_1d(gy, lambda y: y, Dy))
    np.testing.assert_allclose(p, np.outer(px, py), rtol=1e-8, atol=1e-12)


# ------------------------------------------------------------------ escape times
def test_mfpt_free_diffusion():
    # L' = 0, reflecting at 0, absorbing at b: τ(x) = (b² − x²)/(2D).
    D, b = 0.5, 1.0
    x = np.linspace(0, b, 4001)
    starts = np.array([0.0, 0.3, 0.8])
    tau = fp.mean_first_passage_time_1d(x, 0.0, D, starts, b)
    np.testing.assert_allclose(tau, (b**2 - starts**2) / (2 * D), rtol=1e-6)
    # Mirror image: reflecting at 0, absorbing at −b.
    tau_m = fp.mean_first_passage_time_1d(-x[::-1], 0.0, D, -starts, -b)
    np.testing.assert_allclose(tau_m, tau, rtol=1e-12)


def test_mfpt_linear_potential():
    # L' = F, D const, reflecting at 0, absorbing at b (uphill):
    # τ(x) = [(e^{kb} − e^{kx})/k − (b − x)] / F, k = F/D.
    F, D, b = 0.8, 0.3, 1.5
    k = F / D
    x = np.linspace(0, b, 8001)
    starts = np.array([0.0, 0.5, 1.2])
    tau = fp.mean_first_passage_time_1d(x, F, D, starts, b)
    exact = ((np.exp(k * b) - np.exp(k * starts)) / k - (b - starts)) / F
    np.testing.assert_allclose(tau, exact, rtol=1e-6)


def test_kramers_matches_exact_mfpt_at_high_barrier():
    # Double well, ΔL = 1/4, D = 0.01 (ΔL/D = 25): the Kramers formula's relative error
    # is O(D/ΔL) = 4%; measured from the exact formula it is 1.6%.
    D = 0.01
    x = np.linspace(-3, 1, 40001)
    tau = fp.mean_first_passage_time_1d(x, double_well_grad, D, -1.0, 1.0)
    kramers = fp.kramers_escape_time(0.25, 2.0, -1.0, D)
    assert tau / kramers == pytest.approx(1, abs=0.03)
    assert fp.kramers_rate(0.25, 2.0, -1.0, D) == pytest.approx(1 / kramers, rel=1e-14)


def test_mfpt_state_dependent_noise_matches_simulation():
    # D(x) = 0.1(1 + x²) on L = x²/2: exact MFPT from 0 to b = 0.5 against Euler–Maruyama
    # first-passage times of 1000 independent paths. Checking the barrier only at grid
    # times delays the passage; to first order this is a barrier shifted by
    # β σ(b) sqrt(dt), β = 0.5826 (Broadie–Glasserman–Kou), which is the prediction used.
    # Tolerance: 4 standard errors plus half the size of that correction.
    from sgdtemp.dynamics import euler_maruyama

    diff = lambda z: 0.1 * (1 + z**2)
    b, dt, chunk, n_chunks, R = 0.5, 1e-3, 1000, 30, 1000
    shift = 0.5826 * np.sqrt(2 * diff(b) * dt)
    x = np.linspace(-4, b + shift, 4801)
    tau = [fp.mean_first_passage_time_1d(x, lambda z: z, diff, 0.0, t) for t in (b, b + shift)]
    theta = np.zeros((R, 1))
    first = np.full(R, np.inf)
    for c in range(n_chunks):
        run = euler_maruyama(lambda th: -th, lambda th: np.sqrt(2 * diff(th)), theta, dt, chunk,
                             record_every=1, seed=100 + c)
        hit = run.snapshots[..., 0] >= b
        new = hit.any(0) & np.isinf(first)
        first[new] = (c * chunk + hit[:, new].argmax(0) + 1) * dt
        theta = run.theta
    assert np.isfinite(first).mean() > 0.99  # t = 30 is 6 mean passage times
    first = np.where(np.isfinite(first), first, n_chunks * chunk * dt)
    se = first.std(ddof=1) / np.sqrt(R)
    assert abs(first.mean() - tau[1]) < 4 * se + 0.5 * abs(tau[1] - tau[0])


# ------------------------------------------------------------------ SGD against the theory
def test_sgd_variance_matches_discrete_formula():
    # ℓ_i = ½(θ − y_i)², h = 1: additive noise, so the discrete formula is exact.
    rng = np.random.default_rng(2)
    N, B, lr = 32, 4, 0.5
    problem = LinearRegression(np.ones((N, 1)), rng.standard_normal(N))
    theta_star = problem.minimizer()
    C = problem.noise_covariance(theta_star)
    S = fp.sgd_stationary_covariance_discrete(problem.hessian(theta_star), C, lr, B, n_examples=N)[0, 0]
    run = simulate_sgd(problem, theta_star, lr, B, 400, n_replicas=4000, record_every=10,
                       burn_in=100, seed=0)
    dev2 = ((run.snapshots[..., 0] - theta_star[0]) ** 2).mean(0)
    se = dev2.std(ddof=1) / np.sqrt(dev2.size)
    # 4 s.e. (replica averages are independent; P(false failure) ~ 6e-5).
    assert abs(dev2.mean() - S) < 4 * se
    # The with-replacement value differs by the factor (N−1)/(N−B): the test can tell.
    S_repl = fp.sgd_stationary_covariance_discrete(1.0, C, lr, B)[0, 0]
    assert abs(dev2.mean() - S_repl) > 4 * se


# ------------------------------------------------------------------ the chapter's helpers
def test_equiprobable_edges_and_bin_probabilities_of_a_gaussian():
    from scipy.stats import norm

    x = np.linspace(-8, 8, 16001)
    p = norm.pdf(x)
    F = fp.cumulative_probability(x, p)
    assert F[0] == 0.0 and F[-1] == 1.0 and np.all(np.diff(F) >= 0)
    np.testing.assert_allclose(F, norm.cdf(x), atol=1e-7)  # trapezoid error O(h²)
    K = 10
    edges = fp.equiprobable_edges(x, p, K)
    assert edges[0] == -np.inf and edges[-1] == np.inf and edges.size == K + 1
    np.testing.assert_allclose(edges[1:-1], norm.ppf(np.arange(1, K) / K), atol=1e-5)
    q = fp.bin_probabilities(x, p, edges)
    np.testing.assert_allclose(q, 1 / K, atol=1e-12)  # same F both ways: exact to rounding
    # Another density on the same bins: the Gaussian of twice the variance.
    q2 = fp.bin_probabilities(x, norm.pdf(x, scale=np.sqrt(2)), edges)
    inner = np.concatenate([[0.0], norm.cdf(edges[1:-1], scale=np.sqrt(2)), [1.0]])
    assert q2.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(q2, np.diff(inner), atol=1e-6)


def test_steady_state_l1_error_is_second_order():
    diff = lambda x: 0.1 * (1 + 0.5 * x**2)
    e1, e2 = (fp.steady_state_l1_error(np.linspace(-2.5, 2.5, n), double_well_grad, diff)
              for n in (101, 201))
    assert e2 < 1e-3
    assert e1 / e2 == pytest.approx(4, rel=0.05)


def test_sgd_squared_deviation_matches_discrete_formula():
    rng = np.random.default_rng(4)
    N, B = 32, 4
    problem = LinearRegression(np.ones((N, 1)), rng.standard_normal(N))
    C = problem.noise_covariance(problem.minimizer())
    for lr in (0.3, 1.5):  # ηh on both sides of 1 (relaxation time from min(ηh, 2 − ηh))
        dev2 = fp.sgd_squared_deviation(problem, lr, B, 1.0, 2000, replacement=False, seed=1)
        assert dev2.shape == (2000,)
        S = fp.sgd_stationary_covariance_discrete(1.0, C, lr, B, n_examples=N)[0, 0]
        se = dev2.std(ddof=1) / np.sqrt(dev2.size)
        assert abs(dev2.mean() - S) < 4 * se


def test_banana_gradient_and_critical_points():
    th = np.random.default_rng(5).normal(size=(20, 2))
    eps = 1e-6
    for k in range(2):
        step = np.zeros(2)
        step[k] = eps
        fd = (fp.banana_loss(th + step) - fp.banana_loss(th - step)) / (2 * eps)
        np.testing.assert_allclose(fp.banana_grad(th)[:, k], fd, atol=1e-8)
    crit = np.array([[1.0, 0.5], [-1.0, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(fp.banana_grad(crit), 0.0, atol=1e-15)
    np.testing.assert_allclose(fp.banana_loss(crit), [0.0, 0.0, 0.25])


def test_on_mesh_matches_component_callables():
    gx, gy = np.linspace(-2, 2, 21), np.linspace(-1.5, 2.5, 17)
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    g = fp.on_mesh(fp.banana_grad)(X, Y)
    assert g.shape == (2,) + X.shape
    np.testing.assert_allclose(g[1], Y - 0.5 * X**2)
    diag = lambda th: 0.1 + 0.05 * th**2
    a = fp.fp_operator_2d(gx, gy, fp.on_mesh(fp.banana_grad), fp.on_mesh(diag)).matrix
    b = fp.fp_operator_2d(gx, gy, lambda X, Y: (X * (X * X - 1) - (Y - X * X / 2) * X, Y - X * X / 2),
                          lambda X, Y: np.stack([0.1 + 0.05 * X**2, 0.1 + 0.05 * Y**2])).matrix
    assert abs(a - b).max() < 1e-12


def test_spectral_gap_of_ornstein_uhlenbeck():
    # dθ = −hθ dt + sqrt(2D) dW: generator eigenvalues −k h, so the gap is h (D drops out).
    h = 1.5
    op = fp.fp_operator_1d(np.linspace(-4, 4, 801), lambda x: h * x, 0.5)
    assert fp.spectral_gap(op) == pytest.approx(h, rel=1e-3)


def test_grid_mean_and_between_well_difference():
    p = np.array([[0.1, 0.3], [0.2, 0.4]])  # cell volume 1: sums to 1
    right = np.array([[False, False], [True, True]])
    f = np.array([[1.0, 2.0], [3.0, 5.0]])
    assert fp.grid_mean(p, right, 1.0) == pytest.approx(0.6)
    assert fp.grid_mean(p, f, 0.5) == pytest.approx(0.5 * (0.1 + 0.6 + 0.6 + 2.0))
    # E[f | right] = (0.6 + 2.0)/0.6, E[f | left] = (0.1 + 0.6)/0.4
    assert fp.between_well_difference(p, f, right) == pytest.approx(2.6 / 0.6 - 0.7 / 0.4)


def test_quadratic_excess_loss_and_sgd_excess_loss():
    snaps = np.array([[[1.0, 0.0], [0.0, 2.0]], [[3.0, 0.0], [0.0, 0.0]]])  # (K=2, R=2, d=2)
    H = np.diag([2.0, 0.5])
    # replica 0: ½·2·1 and ½·2·9 → mean 5; replica 1: ½·0.5·4 and 0 → mean 0.5
    np.testing.assert_allclose(fp.quadratic_excess_loss(snaps, np.zeros(2), H), [5.0, 0.5])
    problem = LinearRegression.gaussian(200, 2, noise_std=1.0, rng=6)
    theta_star = problem.minimizer()
    lr, B = 0.05, 2
    per_rep = fp.sgd_excess_loss(problem, lr, B, 1500, seed=2)
    S = fp.sgd_stationary_covariance_linear_regression(problem.X, problem.residuals(theta_star),
                                                       lr, B)
    exact = 0.5 * np.trace(problem.hessian(theta_star) @ S)
    se = per_rep.std(ddof=1) / np.sqrt(per_rep.size)
    assert abs(per_rep.mean() - exact) < 4 * se
