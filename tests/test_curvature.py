"""Curvature and gradient noise against models whose Hessian is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sgdtemp import curvature as C
from sgdtemp.models import small_cnn
from sgdtemp.regression import LinearRegression, LogisticRegression


def half_mse(out, y):
    return 0.5 * ((out.squeeze(-1) - y) ** 2).mean()


def logistic(out, s):
    return F.softplus(-s * out.squeeze(-1)).mean()


def linear_model(theta: np.ndarray) -> torch.nn.Module:
    m = torch.nn.Linear(len(theta), 1, bias=False).double()
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(theta)[None])
    return m


def split(X, y, sizes=(7, 20, 13)):
    """Unequal batches: the loss must weight them by size to be the mean over all."""
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    edges = np.cumsum((0,) + sizes)
    return [(X[a:b], y[a:b]) for a, b in zip(edges[:-1], edges[1:])]


def hessian_columns(model, loss_fn, batches, d, method="autograd"):
    cols = []
    for j in range(d):
        e = torch.zeros(1, d, dtype=torch.float64)
        e[0, j] = 1.0
        hv = C.hessian_vector_product(model, loss_fn, batches, {"weight": e}, method=method)
        cols.append(hv["weight"][0])
    return torch.stack(cols, 1).numpy()


@pytest.fixture
def linreg():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6)) * np.array([3.0, 1.0, 0.5, 2.0, 1.0, 0.2])
    y = rng.standard_normal(40)
    return LinearRegression(X, y), rng.standard_normal(6)


@pytest.mark.parametrize("method", ["autograd", "jvp"])
def test_hvp_of_linear_mse_is_xtx_over_n(linreg, method):
    prob, theta = linreg
    H = hessian_columns(linear_model(theta), half_mse, split(prob.X, prob.y), 6, method)
    np.testing.assert_allclose(H, prob.hessian(theta), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", ["autograd", "jvp"])
def test_hvp_of_logistic_regression_matches_exact_hessian(method):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5))
    s = np.where(rng.random(40) < 0.5, -1.0, 1.0)
    theta = rng.standard_normal(5)
    H = hessian_columns(linear_model(theta), logistic, split(X, s), 5, method)
    np.testing.assert_allclose(H, LogisticRegression(X, s).hessian(theta), rtol=1e-12, atol=1e-14)


def test_top_eigenvalue_is_exact_once_the_krylov_space_is_full(linreg):
    prob, theta = linreg
    lam = C.top_eigenvalue(linear_model(theta), half_mse, split(prob.X, prob.y), n_iter=6)
    assert lam == pytest.approx(np.linalg.eigvalsh(prob.hessian(theta))[-1], rel=1e-10)


def test_hutchinson_is_exact_for_a_diagonal_hessian():
    # Orthogonal columns make H = XᵀX/N diagonal; vᵀHv = Σ H_ii v_i² = tr H for ±1 probes.
    X = np.linalg.qr(np.random.default_rng(2).standard_normal((40, 6)))[0] * np.arange(1.0, 7.0)
    y = np.zeros(40)
    tr, se = C.hutchinson_trace(linear_model(np.ones(6)), half_mse, split(X, y), n_probes=5, seed=0)
    assert tr == pytest.approx(np.sum(np.arange(1.0, 7.0) ** 2) / 40, rel=1e-12)
    assert se == pytest.approx(0.0, abs=1e-12)


def test_hutchinson_within_its_standard_error(linreg):
    prob, theta = linreg
    H = prob.hessian(theta)
    n = 400
    tr, se = C.hutchinson_trace(linear_model(theta), half_mse, split(prob.X, prob.y), n_probes=n, seed=3)
    # For Rademacher probes Var(vᵀHv) = 2(‖H‖_F² − Σ H_ii²) exactly; the reported standard
    # error estimates √(that/n). With n = 400 the sample sd is within 25 % of the truth
    # unless something is wrong (its relative sd here is ~ √((κ−1)/4n) < 0.1 for the
    # kurtosis κ < 10 of this quadratic form).
    true_se = np.sqrt(2 * (np.sum(H**2) - np.sum(np.diag(H) ** 2)) / n)
    assert se == pytest.approx(true_se, rel=0.25)
    # The mean of 400 iid terms is close to normal: 4 standard errors fail with
    # probability 6e-5 for a correct estimator (and the seed is fixed).
    assert abs(tr - np.trace(H)) < 4 * se


def test_gradient_noise_trace_is_the_per_example_covariance_trace(linreg):
    prob, theta = linreg
    got = C.gradient_noise_trace(linear_model(theta), half_mse, split(prob.X, prob.y))
    assert got == pytest.approx(np.trace(prob.noise_covariance(theta)), rel=1e-12)


def test_cnn_hessian_is_symmetric_and_lanczos_bounds_rayleigh_quotients():
    torch.manual_seed(0)
    model = small_cnn(width=4).double()
    model.train()
    x = torch.randn(32, 3, 8, 8, dtype=torch.float64)  # 8×8 → 1×1 after three poolings
    y = torch.randint(0, 10, (32,))
    with torch.no_grad():  # give BatchNorm non-trivial running statistics
        model(x)
    batches = [(x[:12], y[:12]), (x[12:], y[12:])]
    params = {k: p.detach() for k, p in model.named_parameters()}
    g = torch.Generator().manual_seed(0)
    u = {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in params.items()}
    v = {k: torch.randn(p.shape, generator=g, dtype=p.dtype) for k, p in params.items()}
    hu = C.hessian_vector_product(model, F.cross_entropy, batches, u)
    hv = C.hessian_vector_product(model, F.cross_entropy, batches, v)
    assert float(C._dot(u, hv)) == pytest.approx(float(C._dot(v, hu)), rel=1e-9)
    assert model.training  # restored after the eval-mode evaluation
    lam = C.top_eigenvalue(model, F.cross_entropy, batches, n_iter=10)
    for w, hw in ((u, hu), (v, hv)):
        assert lam >= float(C._dot(w, hw) / C._dot(w, w)) - 1e-9


# ---------------------------------------------------------------- BatchNorm in training mode
def _bn_net():
    torch.manual_seed(1)
    model = small_cnn(width=4).double()
    x = torch.randn(48, 3, 8, 8, dtype=torch.float64)
    y = torch.randint(0, 10, (48,))
    with torch.no_grad():  # running statistics far from one batch's: the two losses differ
        model.train()
        model(3.0 * x + 1.0)
    model.eval()
    return model, x, y


def test_batch_statistics_model_computes_the_training_step_outputs_and_changes_nothing():
    model, x, y = _bn_net()
    before = {k: b.clone() for k, b in model.named_buffers()}
    copy = C.batch_statistics_model(model)
    assert list(copy.named_buffers()) == []  # no running statistics left to update
    train_twin = C.batch_statistics_model(model).train()
    with torch.no_grad():
        ref = __import__("copy").deepcopy(model).train()(x[:16])  # what a training step sees
        out_eval_mode, out_train_mode = copy.eval()(x[:16]), train_twin(x[:16])
    torch.testing.assert_close(out_eval_mode, ref, rtol=0, atol=0)
    torch.testing.assert_close(out_train_mode, ref, rtol=0, atol=0)
    for k, b in model.named_buffers():  # the original keeps its statistics and its mode
        torch.testing.assert_close(b, before[k], rtol=0, atol=0)
    assert not model.training
    for (k, p), (k2, q) in zip(model.named_parameters(), copy.named_parameters()):
        assert k == k2 and torch.equal(p, q) and p.data_ptr() != q.data_ptr()


def test_batch_statistics_hessian_is_the_hessian_of_the_training_step_loss():
    """H·v from the curvature functions equals torch.autograd.functional.hvp of the loss
    mean_b CE(train-mode net(x_b)), over fixed batches of B = 16, exactly up to rounding;
    the eval-mode Hessian (running statistics) is a different matrix."""
    from torch.func import functional_call

    model, x, y = _bn_net()
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 48, 16)]
    net = C.batch_statistics_model(model)
    names = [k for k, _ in net.named_parameters()]
    params = tuple(p.detach() for _, p in net.named_parameters())
    g = torch.Generator().manual_seed(3)
    v = tuple(torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params)

    def loss(*ps):
        d = dict(zip(names, ps))
        return sum(F.cross_entropy(functional_call(net, d, (xb,)), yb) for xb, yb in batches) / 3

    _, ref = torch.autograd.functional.hvp(loss, params, v)
    got = C.hessian_vector_product(net, F.cross_entropy, batches, dict(zip(names, v)))
    for k, r in zip(names, ref):
        torch.testing.assert_close(got[k], r, rtol=1e-9, atol=1e-12)
    evald = C.hessian_vector_product(model, F.cross_entropy, batches, dict(zip(names, v)))
    assert max(float((evald[k] - got[k]).abs().max()) for k in names) > 1e-3
    assert C.top_eigenvalue(net, F.cross_entropy, batches, n_iter=8) > 0
