"""Exact one-step checks of the training engine's update, on tiny synthetic data.

The book's claims are about T = η/B, so the engine must apply exactly the update it
states: θ ← θ − η ∇L̂_B(θ) with L̂_B the *mean* loss over the B examples of the batch
(momentum μ: v ← μ v + g, θ ← θ − η v, v₀ = g; weight decay λ: g ← ∇L̂_B + λθ). A slip such
as η/B for η, a sum instead of a mean, or a decay left out trains fine and changes every
temperature, so each update is recomputed here by hand and compared weight by weight.

How: :func:`run_training` builds its network with ``sgdtemp.train.build_model``; the test
wraps that function to keep a copy of the initial weights and a forward pre-hook that
records every input the network sees in training mode — the exact batches the engine
used, in order. Each batch is matched (exactly: the images are distinct) to the training
examples it came from, which gives its labels. The expected weights are then computed
from the copy with ``torch.autograd`` and compared with the engine's final weights.

Tolerance: the same float32 operations in the same order, so the two agree to rounding
(observed ≤ 1e-7); ``ATOL``/``RTOL`` leave a margin for summation-order differences, and
each test asserts that the step it checks is far larger than that tolerance, and that the
η/B update would fail it, so the check cannot pass vacuously.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sgdtemp import train
from sgdtemp.data import Dataset
from sgdtemp.train import normalise, run_training

ATOL, RTOL = 2e-6, 1e-5
MEAN, STD = (0.3,), (0.25,)


def tiny_dataset(n: int, seed: int = 0, n_classes: int = 4, side: int = 8) -> Dataset:
    """Random grey images (distinct with overwhelming probability, checked) with a class
    marker row, as uint8 (N, 1, side, side)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_classes, (n,), generator=g)
    x = torch.randint(0, 256, (n, 1, side, side), generator=g, dtype=torch.uint8)
    x[torch.arange(n), 0, 2 * y] = 255
    assert len(torch.unique(x.view(n, -1), dim=0)) == n
    return Dataset(name="fashion_mnist", x_train=x, y_train=y, x_test=x[:8], y_test=y[:8],
                   x_shift=x[-8:], y_shift=y[-8:], n_classes=n_classes, mean=MEAN, std=STD,
                   classes=tuple("abcd"[:n_classes]), train_index=np.arange(n))


class Spy:
    """Keeps the network run_training builds, its initial weights and its training inputs."""

    def __init__(self, monkeypatch):
        self.model: torch.nn.Module | None = None
        self.initial: torch.nn.Module | None = None
        self.inputs: list[torch.Tensor] = []
        real = train.build_model

        def build(*args, **kw):
            model = real(*args, **kw)
            assert self.model is None, "one run, one network"
            self.model, self.initial = model, copy.deepcopy(model)
            model.register_forward_pre_hook(self._record)
            return model

        monkeypatch.setattr(train, "build_model", build)

    def _record(self, module, args):
        if module.training:  # evaluation runs in eval mode
            self.inputs.append(args[0].detach().clone())

    def batches(self, data: Dataset) -> list[torch.Tensor]:
        """Indices into the training set of every training batch, in order."""
        xn = normalise(data.x_train, torch.tensor(MEAN).view(1, -1, 1, 1),
                       torch.tensor(STD).view(1, -1, 1, 1)).flatten(1)
        out = []
        for xb in self.inputs:
            match = (xb.contiguous().flatten(1)[:, None] == xn[None]).all(-1)  # (B, N)
            assert torch.all(match.sum(1) == 1), "a training input is not a training image"
            out.append(match.int().argmax(1))
        return out


def expected_weights(initial: torch.nn.Module, data: Dataset, batches, lr: float,
                     momentum: float = 0.0, weight_decay: float = 0.0) -> list[torch.Tensor]:
    """SGD by hand: g = ∇ mean_i∈B CE + λθ; v = g (first step) or μv + g; θ ← θ − η v."""
    model = copy.deepcopy(initial).train()
    params = list(model.parameters())
    mean, std = torch.tensor(MEAN).view(1, -1, 1, 1), torch.tensor(STD).view(1, -1, 1, 1)
    bufs: list[torch.Tensor | None] = [None] * len(params)
    for idx in batches:
        xb = normalise(data.x_train[idx], mean, std)
        loss = F.cross_entropy(model(xb).float(), data.y_train[idx])  # mean over the batch
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for i, (p, g) in enumerate(zip(params, grads)):
                d = g + weight_decay * p
                if momentum:
                    bufs[i] = d.clone() if bufs[i] is None else momentum * bufs[i] + d
                    d = bufs[i]
                p -= lr * d
    return [p.detach() for p in params]


def assert_weights(got: torch.nn.Module, want: list[torch.Tensor]) -> None:
    for (name, p), w in zip(got.named_parameters(), want):
        torch.testing.assert_close(p.detach().contiguous(), w.contiguous(), atol=ATOL, rtol=RTOL,
                                   msg=lambda m: f"parameter {name}: {m}")


def max_change(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((x - y).abs().max()) for x, y in zip(a, b))


def run(monkeypatch, data: Dataset, **cfg) -> tuple[dict, Spy]:
    spy = Spy(monkeypatch)
    base = dict(dataset="fashion_mnist", model="mlp", width=16, augment=False, device="cpu",
                eval_train_examples=len(data.y_train), eval_test_examples=8, epochs=1)
    record = run_training({**base, **cfg}, progress=False, data=data)
    return record, spy


def test_one_step_of_plain_sgd_is_theta_minus_lr_times_the_mean_batch_gradient(monkeypatch):
    # N = B and one epoch: exactly one step, on a batch of all N examples.
    data, lr, B = tiny_dataset(32), 0.1, 32
    record, spy = run(monkeypatch, data, lr=lr, batch_size=B)
    batches = spy.batches(data)
    assert record["steps"] == 1 and len(batches) == 1
    assert sorted(batches[0].tolist()) == list(range(32))
    initial = [p.detach() for p in spy.initial.parameters()]
    want = expected_weights(spy.initial, data, batches, lr)
    assert max_change(want, initial) > 1e3 * ATOL  # the step is far above the tolerance
    assert_weights(spy.model, want)
    # The check separates η from η/B (the slip this test exists for): that update is off
    # by (1 − 1/B) of the step, hundreds of tolerances.
    wrong = expected_weights(spy.initial, data, batches, lr / B)
    assert max_change(wrong, want) > 1e2 * ATOL
    # The record reports the loss of those weights: the training loss after the step, on
    # all N examples (the evaluation subset is the whole training set here).
    model = copy.deepcopy(spy.initial).eval()
    with torch.no_grad():
        for p, w in zip(model.parameters(), want):
            p.copy_(w)
        xn = normalise(data.x_train, torch.tensor(MEAN).view(1, -1, 1, 1),
                       torch.tensor(STD).view(1, -1, 1, 1))
        loss_after = float(F.cross_entropy(model(xn), data.y_train))
    assert record["curves"]["train_loss"][1] == pytest.approx(loss_after, rel=1e-5)
    assert abs(record["curves"]["train_loss"][1] - record["curves"]["train_loss"][0]) > 1e-3


@pytest.mark.parametrize("momentum,weight_decay,epochs", [
    (0.9, 0.0, 1),   # momentum: three steps, so the buffer recursion v ← μv + g is exercised
    (0.0, 0.05, 1),  # weight decay alone: g + λθ
    (0.5, 0.05, 2),  # both, across an epoch boundary (a new permutation, the buffer kept)
])
def test_momentum_and_weight_decay_steps_are_torch_sgd(monkeypatch, momentum, weight_decay, epochs):
    data, lr, B = tiny_dataset(48), 0.05, 16
    record, spy = run(monkeypatch, data, lr=lr, batch_size=B, momentum=momentum,
                      weight_decay=weight_decay, epochs=epochs)
    batches = spy.batches(data)
    assert record["steps"] == len(batches) == 3 * epochs
    want = expected_weights(spy.initial, data, batches, lr, momentum, weight_decay)
    assert_weights(spy.model, want)
    # Each ingredient matters at this size: leaving it out moves the weights far beyond
    # the tolerance, so the comparison above is a real check of it.
    if momentum:
        assert max_change(expected_weights(spy.initial, data, batches, lr, 0.0, weight_decay),
                          want) > 1e2 * ATOL
    if weight_decay:
        assert max_change(expected_weights(spy.initial, data, batches, lr, momentum, 0.0),
                          want) > 1e2 * ATOL
    assert max_change(expected_weights(spy.initial, data, batches, lr / B, momentum,
                                       weight_decay), want) > 1e2 * ATOL


def test_convolutional_step_with_batchnorm_uses_the_batch_statistics(monkeypatch):
    # small_cnn: BatchNorm in training mode normalises with the batch's own statistics and
    # the engine feeds channels_last tensors; the update is still the plain SGD step.
    data, lr, B = tiny_dataset(24, seed=1), 0.2, 12
    record, spy = run(monkeypatch, data, model="small_cnn", width=4, lr=lr, batch_size=B)
    batches = spy.batches(data)
    assert record["steps"] == 2
    want = expected_weights(spy.initial, data, batches, lr)
    assert max_change(want, [p.detach() for p in spy.initial.parameters()]) > 1e3 * ATOL
    assert_weights(spy.model, want)


def test_every_step_uses_exactly_b_distinct_examples_and_drops_the_remainder(monkeypatch):
    # N = 70, B = 32: two steps per epoch (64 examples), the last 6 of the permutation
    # unused, a new permutation each epoch, so T = η/B holds at every step.
    data = tiny_dataset(70, seed=2)
    record, spy = run(monkeypatch, data, lr=0.01, batch_size=32, epochs=3)
    batches = spy.batches(data)
    assert record["steps"] == len(batches) == 6
    assert all(len(b) == 32 for b in batches)
    epochs = [torch.cat(batches[i:i + 2]) for i in range(0, 6, 2)]
    assert all(len(torch.unique(e)) == 64 for e in epochs)  # without replacement
    assert len({tuple(e.tolist()) for e in epochs}) == 3  # reshuffled every epoch


# ---------------------------------------------------------------- the later updates
def weights_after(initial: torch.nn.Module, data: Dataset, steps) -> list[torch.Tensor]:
    """Plain steps θ ← θ − η_t ∇f_t(θ) by hand, ``steps`` a list of (η_t, f_t) with
    f_t(model) the objective of step t."""
    model = copy.deepcopy(initial).train()
    params = list(model.parameters())
    for lr, objective in steps:
        grads = torch.autograd.grad(objective(model), params)
        with torch.no_grad():
            for p, g in zip(params, grads):
                p -= lr * g
    return [p.detach() for p in params]


def batch_loss(data: Dataset, idx):
    """The mean cross-entropy of batch idx, as a function of the model."""
    mean, std = torch.tensor(MEAN).view(1, -1, 1, 1), torch.tensor(STD).view(1, -1, 1, 1)
    xb = normalise(data.x_train[idx], mean, std)
    return lambda model: F.cross_entropy(model(xb).float(), data.y_train[idx])


def test_explicit_regularizer_step_descends_loss_plus_lambda_squared_gradient_norm(monkeypatch):
    # One step (N = B): θ ← θ − η ∇(L̂_B + λ‖∇L̂_B‖²), the gradient of the penalty by double
    # backward; leaving the penalty out must move the weights far beyond the tolerance.
    data, lr, B, lam = tiny_dataset(32), 0.1, 32, 0.5
    record, spy = run(monkeypatch, data, lr=lr, batch_size=B, grad_penalty=lam)
    (idx,) = spy.batches(data)
    loss = batch_loss(data, idx)

    def penalized(model):
        l = loss(model)
        g = torch.autograd.grad(l, list(model.parameters()), create_graph=True)
        return l + lam * sum((gi * gi).sum() for gi in g)

    want = weights_after(spy.initial, data, [(lr, penalized)])
    assert_weights(spy.model, want)
    plain = weights_after(spy.initial, data, [(lr, loss)])
    assert max_change(plain, want) > 1e2 * ATOL


def test_noise_enhanced_step_is_one_plus_alpha_g1_minus_alpha_g2(monkeypatch):
    # N = 2B: one step from two disjoint batches, ĝ = (1+α)∇L̂₁ − α∇L̂₂.
    data, lr, B, alpha = tiny_dataset(32), 0.1, 16, 1.5
    record, spy = run(monkeypatch, data, lr=lr, batch_size=B, enhance_alpha=alpha)
    b1, b2 = spy.batches(data)
    assert record["steps"] == 1 and len(b1) == len(b2) == B
    assert not set(b1.tolist()) & set(b2.tolist())  # disjoint
    l1, l2 = batch_loss(data, b1), batch_loss(data, b2)
    want = weights_after(spy.initial, data, [(lr, lambda m: (1 + alpha) * l1(m) - alpha * l2(m))])
    assert_weights(spy.model, want)
    assert max_change(weights_after(spy.initial, data, [(lr, l1)]), want) > 1e2 * ATOL


@pytest.mark.parametrize("schedule", ["cyclic_lr", "cyclic_batch"])
def test_scheduled_steps_use_the_planned_lr_and_batch_size(monkeypatch, schedule):
    # Every step t uses B_t examples and η_t from the schedule (train.step_plan), recorded in
    # the run's schedule_trace; the weights are those of those steps, computed by hand.
    data = tiny_dataset(64, seed=3)
    record, spy = run(monkeypatch, data, lr=0.2, batch_size=4, schedule=schedule,
                      cycle_ratio=4.0, cycle_epochs=1.0, epochs=2)
    plan = [s for epoch in train.step_plan(record["config"], 64) for s in epoch]
    batches = spy.batches(data)
    assert [len(b) for b in batches] == [b for b, _ in plan] == record["schedule_trace"]["batch_size"]
    lrs = [0.2 * c for _, c in plan]
    assert record["schedule_trace"]["lr"] == pytest.approx(lrs, rel=1e-15)
    want = weights_after(spy.initial, data, [(lr, batch_loss(data, b)) for lr, b in zip(lrs, batches)])
    assert_weights(spy.model, want)
    assert len(set(lrs if schedule == "cyclic_lr" else [len(b) for b in batches])) > 3
