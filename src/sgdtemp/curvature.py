"""Curvature and gradient noise of a network's training loss, with torch.func.

All quantities refer to the loss over a fixed set of examples given as ``batches``
(a list of ``(x, y)`` pairs), weighted by batch size::

    L(θ) = (1/N) Σ_i ℓ(f_θ(x_i), y_i),   N = Σ_b |b|,

with BatchNorm (and dropout) in eval mode, so that L is one deterministic function
of the parameters θ (the running statistics are held fixed). ``loss_fn(outputs,
targets)`` must return the *mean* loss over its batch (e.g. ``F.cross_entropy``).

The loss SGD descends is another function: in training mode every BatchNorm layer
normalises a batch with that batch's own mean and variance. Pass
:func:`batch_statistics_model` of the network, with ``batches`` of the run's own batch
size B, to measure the curvature of that loss, ``L(θ) = mean over the fixed batches of
the batch loss as a training step computes it`` (still one deterministic function of θ);
η·λ_max < 2 is then the stability condition of the steps on it.

* :func:`hessian_vector_product`: Hv = ∇(∇L·v), by double backward through
  ``torch.func.functional_call`` (or forward-over-reverse, ``torch.func.jvp`` of
  ``torch.func.grad``), exact up to rounding.
* :func:`hutchinson_trace`: tr H ≈ mean over Rademacher probes v of vᵀHv.
* :func:`hessian_frobenius_norm`: ‖H‖_F from E‖Hv‖² = ‖H‖_F² over Gaussian probes v.
* :func:`top_eigenvalue`: the largest eigenvalue of H by Lanczos.
* :func:`gradient_noise_trace`: tr Σ, Σ = (1/N) Σ_i (∇ℓ_i − ∇L)(∇ℓ_i − ∇L)ᵀ, from
  per-example gradients (``torch.func.vmap`` over ``grad``).
* :func:`gradient_noise_scale`: McCandlish et al.'s simple noise scale
  B_simple = tr Σ / ``|G|²``, G = ∇L, with unbiased estimates of both and a jackknife error.

Units: H in loss per parameter², tr Σ in loss² per parameter².
"""

from __future__ import annotations

import os

# Spinning OpenMP threads collapse throughput when the CPU is shared (measured: 2 threads
# at ~100 img/s instead of ~1500 under a load of 5 on 2 cores). Read once, when torch
# loads: effective only if this module is the first to import torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import math
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch.func import functional_call, grad, jvp, vmap

Batches = Sequence[tuple[torch.Tensor, torch.Tensor]]
Params = dict[str, torch.Tensor]


@contextmanager
def _eval_mode(model: torch.nn.Module) -> Iterator[None]:
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def batch_statistics_model(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``model`` whose BatchNorm layers normalise each input batch with the
    batch's own mean and (biased) variance, as in a training step, and keep no running
    statistics (nothing is updated by a forward pass, in either mode).

    The copy has the same parameters (copied, not shared) and computes, for a batch,
    the outputs ``model.train()`` computes; the curvature functions of this module,
    given batches of B examples, then measure the Hessian of the loss the SGD steps of
    batch size B descend. ``model`` itself is left unchanged.
    """
    import copy

    out = copy.deepcopy(model)
    for m in out.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None
    return out


def _split(model: torch.nn.Module) -> tuple[Params, Params]:
    params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    buffers = {k: b.detach() for k, b in model.named_buffers()}
    return params, buffers


def _batch_loss(model, loss_fn, buffers) -> Callable[[Params, torch.Tensor, torch.Tensor], torch.Tensor]:
    def f(params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return loss_fn(functional_call(model, (params, buffers), (x,)), y)

    return f


def _total(batches: Batches) -> int:
    return sum(len(y) for _, y in batches)


def _example_mean(batches: Batches, like: Params,
                  per_batch: Callable[[torch.Tensor, torch.Tensor], Params]) -> Params:
    """Σ_b (|b|/n) per_batch(x_b, y_b): a per-batch mean turned into the mean over all n
    examples (batches may differ in size)."""
    n = _total(batches)
    out = {k: torch.zeros_like(p) for k, p in like.items()}
    for x, y in batches:
        part = per_batch(x, y)
        for k in out:
            out[k] += part[k].detach() * (len(y) / n)
    return out


def _dot(a: Params, b: Params) -> torch.Tensor:
    return sum((a[k].double() * b[k].double()).sum() for k in a)


def _scale_add(a: Params, b: Params, s: float) -> Params:
    """a + s·b."""
    return {k: a[k] + s * b[k] for k in a}


def loss_gradient(model: torch.nn.Module, loss_fn, batches: Batches) -> Params:
    """∇L(θ) as a dict like ``model.named_parameters()``."""
    with _eval_mode(model):
        params, buffers = _split(model)
        f = _batch_loss(model, loss_fn, buffers)
        return _example_mean(batches, params, lambda x, y: grad(f)(params, x, y))


def hessian_vector_product(model: torch.nn.Module, loss_fn, batches: Batches,
                           v: Params, *, method: str = "autograd") -> Params:
    """H v for the Hessian H of L at the model's current parameters (eval mode).

    ``method="autograd"``: reverse-over-reverse, ∇_θ(∇L(θ)·v) by double backward through
    ``functional_call``; ``method="jvp"``: forward-over-reverse, ``torch.func.jvp`` of
    ``torch.func.grad``. Both are exact up to rounding and cost about 4 gradients for
    small_cnn on the CPU (bench/bench_curvature.py). Batch by batch, weighted by batch size.
    """
    if method not in ("autograd", "jvp"):
        raise ValueError("method must be 'autograd' or 'jvp'.")
    with _eval_mode(model):
        params, buffers = _split(model)
        f = _batch_loss(model, loss_fn, buffers)

        def batch_hvp(x, y):
            if method == "jvp":
                return jvp(lambda p: grad(f)(p, x, y), (params,), (v,))[1]
            leaves = {k: p.clone().requires_grad_(True) for k, p in params.items()}
            with torch.enable_grad():
                g = torch.autograd.grad(f(leaves, x, y), list(leaves.values()), create_graph=True)
                gv = sum((gi * v[k]).sum() for gi, k in zip(g, leaves))
                return dict(zip(leaves, torch.autograd.grad(gv, list(leaves.values()))))

        return _example_mean(batches, params, batch_hvp)


def _rademacher(like: Params, gen: torch.Generator) -> Params:
    out = {}
    for k, p in like.items():
        r = torch.randint(0, 2, p.shape, generator=gen, device="cpu", dtype=torch.int8)
        out[k] = (2 * r - 1).to(device=p.device, dtype=p.dtype)
    return out


def hutchinson_trace(model: torch.nn.Module, loss_fn, batches: Batches, n_probes: int = 32,
                     seed: int = 0) -> tuple[float, float]:
    """(tr H estimate, its standard error) from ``n_probes`` Rademacher probes.

    Each probe v (entries ±1, independent) gives vᵀHv with E[vᵀHv] = tr H and
    Var[vᵀHv] = 2 (‖H‖_F² − Σ_i H_ii²); the estimate is their mean and the standard
    error is the sample standard deviation / √n_probes (None for one probe).
    """
    gen = torch.Generator().manual_seed(seed)
    params, _ = _split(model)
    samples = []
    for _ in range(n_probes):
        v = _rademacher(params, gen)
        hv = hessian_vector_product(model, loss_fn, batches, v)
        samples.append(float(_dot(v, hv)))
    s = np.asarray(samples)
    stderr = float(s.std(ddof=1) / math.sqrt(len(s))) if len(s) > 1 else None
    return float(s.mean()), stderr


def _gaussian(like: Params, gen: torch.Generator) -> Params:
    return {k: torch.randn(p.shape, generator=gen, device="cpu", dtype=torch.float32)
            .to(device=p.device, dtype=p.dtype) for k, p in like.items()}


def hessian_frobenius_norm(model: torch.nn.Module, loss_fn, batches: Batches, n_probes: int = 32,
                           seed: int = 0) -> tuple[float, float | None]:
    """(‖H‖_F estimate, its standard error) from ``n_probes`` standard Gaussian probes.

    For v ~ N(0, I), E‖Hv‖² = Σ_ij H_ij² = ‖H‖_F² (since E[v vᵀ] = I), and
    Var‖Hv‖² = 2‖H²‖_F² (Gaussian quartic moments). The mean m of the ‖Hv‖² samples
    estimates ‖H‖_F² with standard error s/√n_probes (s their sample standard deviation);
    ‖H‖_F = √m, with the delta-method standard error s/(2√(m·n_probes)) (None for one
    probe). Units: loss per parameter², like H.
    """
    gen = torch.Generator().manual_seed(seed)
    params, _ = _split(model)
    samples = []
    for _ in range(n_probes):
        hv = hessian_vector_product(model, loss_fn, batches, _gaussian(params, gen))
        samples.append(float(_dot(hv, hv)))
    s = np.asarray(samples)
    norm = math.sqrt(max(float(s.mean()), 0.0))
    if len(s) < 2 or norm == 0.0:
        return norm, None
    return norm, float(s.std(ddof=1) / math.sqrt(len(s)) / (2 * norm))


def top_eigenvalue(model: torch.nn.Module, loss_fn, batches: Batches, n_iter: int = 20,
                   seed: int = 0) -> float:
    """Largest (algebraic) eigenvalue of H by ``n_iter`` steps of Lanczos.

    Lanczos with full reorthogonalisation (in float64) from a seeded Gaussian start:
    the largest eigenvalue of the n_iter × n_iter tridiagonal matrix, a lower bound on
    λ_max that converges much faster than power iteration; exact once n_iter ≥ the
    number of distinct eigenvalues.
    """
    params, _ = _split(model)
    keys = list(params)
    shapes = [params[k].shape for k in keys]
    sizes = [params[k].numel() for k in keys]
    dim = sum(sizes)
    dev, dtype = params[keys[0]].device, params[keys[0]].dtype

    def unflat(vec: torch.Tensor) -> Params:
        parts = torch.split(vec.to(dtype), sizes)
        return {k: t.view(s) for k, t, s in zip(keys, parts, shapes)}

    def matvec(vec: torch.Tensor) -> torch.Tensor:
        hv = hessian_vector_product(model, loss_fn, batches, unflat(vec))
        return torch.cat([hv[k].reshape(-1) for k in keys]).double()

    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(dim, generator=gen, dtype=torch.float64).to(dev)
    q /= q.norm()
    basis = [q]
    alphas, betas = [], []
    for j in range(min(n_iter, dim)):
        w = matvec(basis[-1])
        alphas.append(float(w @ basis[-1]))
        Q = torch.stack(basis)
        w = w - Q.T @ (Q @ w)  # full reorthogonalisation (twice is enough)
        w = w - Q.T @ (Q @ w)
        beta = float(w.norm())
        if j == min(n_iter, dim) - 1 or beta < 1e-10 * max(1.0, abs(alphas[-1])):
            break
        betas.append(beta)
        basis.append(w / beta)
    T = np.diag(alphas) + np.diag(betas[: len(alphas) - 1], 1) + np.diag(betas[: len(alphas) - 1], -1)
    return float(np.linalg.eigvalsh(T)[-1])


def _per_example_gradients(model: torch.nn.Module, loss_fn) -> tuple[Params, Callable]:
    """The model's parameters and ``per_example(params, x, y)``: the gradient of each
    example's loss (a batch of one, by ``vmap`` over ``grad``), stacked along a first axis.
    Call it with the model in eval mode, so BatchNorm gives each example the batch's loss."""
    params, buffers = _split(model)
    f = _batch_loss(model, loss_fn, buffers)

    def one(p: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return f(p, x.unsqueeze(0), y.unsqueeze(0))

    return params, vmap(grad(one), in_dims=(None, 0, 0))


def gradient_noise_trace(model: torch.nn.Module, loss_fn, batches: Batches) -> float:
    """tr Σ = (1/N) Σ_i ‖∇ℓ_i − ∇L‖², the per-example gradient covariance's trace.

    The covariance of one minibatch-mean gradient of B examples drawn with replacement
    is Σ/B. Per-example gradients come from ``vmap`` over ``grad`` (each example is a
    batch of one; BatchNorm in eval mode makes that the same loss as in the batch).
    """
    gbar = loss_gradient(model, loss_fn, batches)
    with _eval_mode(model):
        params, per_example = _per_example_gradients(model, loss_fn)
        total = torch.zeros((), dtype=torch.float64, device=next(iter(params.values())).device)
        for x, y in batches:
            g = per_example(params, x, y)
            for k in g:
                d = (g[k] - gbar[k]).double().reshape(len(y), -1)
                total += (d * d).sum()
        return float(total) / _total(batches)


def gradient_noise_scale(model: torch.nn.Module, loss_fn, batches: Batches,
                         n_blocks: int = 16) -> dict:
    """The simple gradient noise scale B_simple = tr Σ / ``|G|²`` (McCandlish et al. 2018,
    "An empirical model of large-batch training", §2.2 and App. A), in examples.

    From the per-example gradients g_i of the n examples of ``batches`` (a sample of the
    training set, BatchNorm in eval mode as in :func:`gradient_noise_trace`)::

        ḡ = (1/n) Σ g_i
        tr Σ̂  = (Σ|g_i|² − n|ḡ|²)/(n − 1)          unbiased for tr Σ
        |G|²̂  = |ḡ|² − tr Σ̂/n                         unbiased, since E|ḡ|² = |G|² + tr Σ/n
        B̂     = tr Σ̂ / |G|²̂

    B_simple is the batch size at which the minibatch gradient's noise, tr Σ/B, equals the
    squared signal ``|G|²``: below it a step is mostly noise, and doubling B (at fixed T) buys
    almost a doubled step; above it, doubling B buys little (the "critical batch size").
    Its standard error is a delete-one-block jackknife over ``n_blocks`` contiguous blocks
    of examples (needs only the blocks' gradient sums, their Gram matrix and ``Σ|g_i|²``).
    Returns ``{"b_simple", "b_simple_stderr", "grad_cov_trace", "grad_sq_norm",
    "grad_sq_norm_stderr", "n_examples", "n_blocks"}``; ``b_simple`` is ``inf`` when the
    estimated ``|G|²`` is not positive (the signal is below what n examples can resolve).
    Units: tr Σ and ``|G|²`` in loss² per parameter², B_simple in examples.
    """
    n = _total(batches)
    k = int(n_blocks)
    if not 2 <= k <= n:
        raise ValueError(f"n_blocks must be between 2 and the number of examples {n}; got {n_blocks!r}.")
    block_of = (torch.arange(n) * k) // n  # contiguous blocks of (almost) equal size
    with _eval_mode(model):
        params, per_example = _per_example_gradients(model, loss_fn)
        dev = next(iter(params.values())).device
        sums = {name: torch.zeros((k, p.numel()), dtype=torch.float64, device=dev)
                for name, p in params.items()}
        sq = torch.zeros(k, dtype=torch.float64, device=dev)
        counts = torch.bincount(block_of, minlength=k).double().to(dev)
        start = 0
        for x, y in batches:
            blocks = block_of[start:start + len(y)].to(dev)
            start += len(y)
            g = per_example(params, x, y)
            for name in sums:
                gi = g[name].detach().double().reshape(len(y), -1)
                sums[name].index_add_(0, blocks, gi)
                sq.index_add_(0, blocks, (gi * gi).sum(1))
    gram = sum(s @ s.T for s in sums.values())  # (k, k): S_b · S_c

    def estimate(keep: torch.Tensor) -> tuple[float, float, float]:
        m = float(counts[keep].sum())
        s2 = float(gram[keep][:, keep].sum())  # |Σ g_i|² over the kept blocks
        mean_sq = s2 / m**2
        tr = (float(sq[keep].sum()) - m * mean_sq) / (m - 1)
        g2 = mean_sq - tr / m
        return (tr / g2 if g2 > 0 else math.inf), tr, g2

    b, tr, g2 = estimate(torch.ones(k, dtype=torch.bool))
    leave_out = [estimate(torch.arange(k) != j) for j in range(k)]

    def jackknife(values: list[float]) -> float:
        v = np.asarray(values, dtype=float)
        if not np.all(np.isfinite(v)):
            return math.inf
        return float(np.sqrt((k - 1) / k * ((v - v.mean()) ** 2).sum()))

    return {"b_simple": b, "b_simple_stderr": jackknife([e[0] for e in leave_out]),
            "grad_cov_trace": tr, "grad_sq_norm": g2,
            "grad_sq_norm_stderr": jackknife([e[2] for e in leave_out]),
            "n_examples": n, "n_blocks": k}
