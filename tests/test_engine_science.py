"""The training engine's scientific details, each against an explicit computation.

* Curvature with ``curvature_batchnorm='train'``: the top eigenvalue, trace and Frobenius
  norm a run records are those of the loss SGD descends — the mean over ⌊curvature_examples/B⌋
  fixed batches of B of the batch loss with every BatchNorm normalising by the batch's own
  statistics — checked against that loss's full Hessian built by autograd (in float64) on
  the same batches, and shown to differ from the eval-mode and the one-big-batch Hessians.
* Evaluation subsets: on data sorted by class, every run's test subset holds each class in
  exact proportion (a stratified sample) and its training subset is a uniform random
  sample (each class within hypergeometric error), in both step engines.
* The Frobenius-norm estimator: unbiased to well under 2% on a model whose Hessian is known
  in closed form, with enough probes that a 2% bias would be seen.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sgdtemp import curvature as C
from sgdtemp import train
from sgdtemp.data import Dataset
from sgdtemp.train import normalise, run_training, run_trainings
from tests.test_train import synthetic_dataset


def _capture_models(monkeypatch) -> list[torch.nn.Module]:
    """The networks the engine builds (a run alone trains its network in place)."""
    built: list[torch.nn.Module] = []
    real = train.build_model

    def keep(*a, **k):
        m = real(*a, **k)
        built.append(m)
        return m

    monkeypatch.setattr(train, "build_model", keep)
    return built


def _explicit_hessian(model: torch.nn.Module, batches, train_mode: bool) -> torch.Tensor:
    """The full Hessian (float64) of mean_b CE(model(x_b), y_b) in the parameters, by
    autograd: BatchNorm with each batch's own statistics (``train_mode``) or with the
    running statistics."""
    from torch.func import functional_call

    net = copy.deepcopy(model).double().train(train_mode)
    names = [k for k, _ in net.named_parameters()]
    shapes = [p.shape for _, p in net.named_parameters()]
    flat0 = torch.cat([p.detach().flatten() for _, p in net.named_parameters()])
    buffers = {k: b.clone() for k, b in net.named_buffers()}

    def loss(flat: torch.Tensor) -> torch.Tensor:
        ps, i = {}, 0
        for k, s in zip(names, shapes):
            ps[k] = flat[i:i + s.numel()].view(s)
            i += s.numel()
        # fresh buffers each call: a train-mode forward updates running statistics in place
        bufs = {k: b.clone() for k, b in buffers.items()}
        return sum(F.cross_entropy(functional_call(net, (ps, bufs), (x.double(),)), y)
                   for x, y in batches) / len(batches)

    return torch.autograd.functional.hessian(loss, flat0)


def test_train_mode_curvature_of_a_run_is_the_hessian_of_its_own_batches(monkeypatch):
    """λ_max, tr H and ‖H‖_F recorded with curvature_batchnorm='train' against the explicit
    Hessian of the loss over the run's fixed batches of B, each normalised by its own
    BatchNorm statistics.

    Tolerances: Lanczos returns a lower bound on λ_max, exact to rounding once its Krylov
    space is full; with 60 iterations on this 133-parameter network it has converged, so
    it must lie in [λ_max(1 − 1e-3), λ_max(1 + 1e-5)]. Hutchinson and the Frobenius
    estimator are Monte Carlo: within 4 of their own standard errors (a correct estimator
    fails with probability < 1e-4 each). Not vacuous: the eval-mode Hessian (running
    statistics) and the train-mode Hessian of the same examples in one big batch have top
    eigenvalues more than 1% away, so the check fails with the wrong BatchNorm mode or the
    wrong batches.
    """
    built = _capture_models(monkeypatch)
    data = synthetic_dataset()
    B, n_curv = 32, 96
    cfg = dict(dataset="fashion_mnist", model="small_cnn", width=1, n_train=256, batch_size=B,
               epochs=1, lr=0.05, seed=1, curvature=True, curvature_batchnorm="train",
               curvature_frobenius=True, curvature_examples=n_curv, curvature_probes=100,
               curvature_iters=60, eval_train_examples=64, eval_test_examples=64, device="cpu")
    rec = run_training(cfg, progress=False, data=data)["curvature"]
    (model,) = built  # trained in place: its weights are the final ones
    # The run's curvature sample (sgdtemp.train._end_measurements: a fixed permutation,
    # seed 54321) cut into whole batches of B.
    idx = torch.from_numpy(np.random.default_rng(54321).permutation(256)[:n_curv])
    xs = normalise(data.x_train[idx], torch.tensor(data.mean).view(1, -1, 1, 1),
                   torch.tensor(data.std).view(1, -1, 1, 1))
    ys = data.y_train[idx]
    batches = [(xs[i:i + B], ys[i:i + B]) for i in range(0, n_curv, B)]
    assert rec["n_examples"] == n_curv and rec["batch_size"] == B

    H = _explicit_hessian(model, batches, train_mode=True)
    assert torch.allclose(H, H.T, atol=1e-10)
    lam = torch.linalg.eigvalsh(H)
    lam_max, trace, fro = float(lam[-1]), float(H.trace()), float(torch.linalg.matrix_norm(H))
    assert lam_max * (1 - 1e-3) <= rec["top_eigenvalue"] <= lam_max * (1 + 1e-5)
    assert abs(rec["hessian_trace"] - trace) < 4 * rec["hessian_trace_stderr"]
    assert abs(rec["hessian_frobenius"] - fro) < 4 * rec["hessian_frobenius_stderr"]
    # Hutchinson's stated error matches its exact standard deviation, 2(‖H‖_F² − Σ H_ii²)
    # per probe, to within the sampling error of a 100-probe standard deviation.
    exact_se = math.sqrt(2 * (fro**2 - float((H.diagonal() ** 2).sum())) / 100)
    assert 0.6 < rec["hessian_trace_stderr"] / exact_se < 1.5
    # Not vacuous: the other candidate losses have other top eigenvalues.
    for other in (_explicit_hessian(model, batches, train_mode=False),
                  _explicit_hessian(model, [(xs, ys)], train_mode=True)):
        assert abs(float(torch.linalg.eigvalsh(other)[-1]) - lam_max) > 1e-2 * lam_max


# ---------------------------------------------------------------- evaluation subsets
def sorted_by_class(n_train: int = 400, n_test: int = 200, n_classes: int = 4) -> Dataset:
    """Labels sorted by class (as in the test files), every image the same: a network then
    predicts one class c* for every image, so a recorded accuracy is the fraction of c* in
    the evaluated subset."""
    y_tr = torch.arange(n_classes).repeat_interleave(n_train // n_classes)
    y_te = torch.arange(n_classes).repeat_interleave(n_test // n_classes)
    x_tr = torch.full((n_train, 1, 8, 8), 90, dtype=torch.uint8)
    x_te = torch.full((n_test, 1, 8, 8), 90, dtype=torch.uint8)
    return Dataset(name="fashion_mnist", x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
                   x_shift=x_te.clone(), y_shift=y_te.clone(), n_classes=n_classes, mean=(0.3,),
                   std=(0.2,), classes=tuple("abcd"[:n_classes]), train_index=np.arange(n_train))


@pytest.mark.parametrize("eval_train", [200, 400])
def test_every_runs_evaluation_subsets_are_class_balanced_on_sorted_data(monkeypatch, eval_train):
    """The test subset (100 of 200, K = 4) is stratified: exactly 25 of each class, so every
    run's test and shifted-test accuracies are exactly 1/4. The training subset is a seeded
    uniform sample: with 200 of 400 each class count is hypergeometric (mean 50, sd 4.33),
    held within 4 sd (a correct sampler fails with probability < 3e-4); all 400 give exactly
    1/4. Taking the first k examples would give accuracies of 0 or 1. Checked for runs alone
    (the one-module engine) and a vectorized group, and on the subsets themselves."""
    data = sorted_by_class()
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    real = train._evaluation_indices

    def spy(*a, **k):
        out = real(*a, **k)
        seen.append(out)
        return out

    monkeypatch.setattr(train, "_evaluation_indices", spy)
    base = dict(dataset="fashion_mnist", n_train=400, batch_size=40, epochs=0,
                eval_train_examples=eval_train, eval_test_examples=100, device="cpu")
    alone = [run_training(dict(base, model=m, width=4, seed=s, lr=0.1), progress=False, data=data)
             for m, s in (("mlp", 0), ("small_cnn", 1))]
    group = run_trainings([dict(base, model="mlp", width=4, seed=s, lr=0.1) for s in (2, 3, 4)],
                          progress=False, data=data)
    assert len(seen) == 3  # two runs alone, one group
    K, sd = 4, math.sqrt(200 * 0.25 * 0.75 * 200 / 399)
    for eval_idx, test_idx in seen:
        test_counts = np.bincount(data.y_test[test_idx].numpy(), minlength=K)
        assert test_counts.tolist() == [25] * K
        train_counts = np.bincount(data.y_train[eval_idx.cpu()].numpy(), minlength=K)
        assert train_counts.sum() == eval_train
        if eval_train == 400:
            assert train_counts.tolist() == [100] * K
        else:
            assert np.all(np.abs(train_counts - 50) < 4 * sd)
    for rec in alone + group:
        f = rec["final"]
        assert f["test_acc"] == 0.25 and f["shifted_test_acc"] == 0.25
        if eval_train == 400:
            assert f["train_acc"] == 0.25
        else:
            assert abs(f["train_acc"] - 0.25) < 4 * sd / 200


# ---------------------------------------------------------------- Frobenius estimator
def test_frobenius_estimator_is_unbiased_to_well_under_two_percent():
    """A linear map W (k × d) under the half squared error, mean over examples: its Hessian
    is I_k ⊗ XᵀX/N exactly, so ‖H‖_F = √k ‖XᵀX/N‖_F. With a spread spectrum of XᵀX the
    estimate's relative standard deviation, √(2‖H²‖_F²/n)/(2‖H‖_F²), is computed exactly and
    is below 0.5% with n = 400 probes: a bias of 2% would sit more than 4 sd out. The
    estimate must fall within 4 sd of the exact norm (fails by chance < 1e-4), and the
    estimator's own standard error must agree with the exact one to sampling error."""
    g = torch.Generator().manual_seed(0)
    N, d, k, n = 120, 20, 10, 400
    X = torch.randn(N, d, generator=g, dtype=torch.float64) * torch.linspace(0.3, 3.0, d, dtype=torch.float64)
    Y = torch.randn(N, k, generator=g, dtype=torch.float64)
    model = torch.nn.Linear(d, k, bias=False).double()

    def half_sq(out, y):
        return 0.5 * ((out - y) ** 2).sum(1).mean()

    batches = [(X[:50], Y[:50]), (X[50:], Y[50:])]  # unequal: weighted by size
    A = X.T @ X / N
    fro2 = k * float((A * A).sum())  # ‖I_k ⊗ A‖_F²
    fro4 = k * float(((A @ A) ** 2).sum())  # ‖H²‖_F²
    rel_sd = math.sqrt(2 * fro4 / n) / (2 * fro2)
    assert rel_sd < 0.005  # resolves a 2% bias at 4 sd
    est, se = C.hessian_frobenius_norm(model, half_sq, batches, n_probes=n, seed=3)
    exact = math.sqrt(fro2)
    assert abs(est - exact) < 4 * rel_sd * exact
    assert 0.8 < se / (rel_sd * exact) < 1.25
