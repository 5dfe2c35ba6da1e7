"""Scale-invariant weights and their norms (issue 21): which weights are scale-invariant,
what ``record_weight_norms`` records, and the weight-decay equilibrium of their norm.

A weight in front of a BatchNorm is scale-invariant in training mode: the loss does not
change under w → cw (c > 0), so its gradient g is orthogonal to w and scales as 1/|w|. A
step of plain SGD with coupled weight decay λ, w ← w − η(g + λw), changes the squared norm
to (1 − ηλ)²|w|² + η²|g|²: without decay it can only grow; with decay it settles where
2ηλ|w|² ≈ η²E|g|², i.e. |w|² ≈ η E|g|²/(2λ) with the gradient at the current weights.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sgdtemp.train as train
from sgdtemp.data import Dataset
from sgdtemp.models import build_model, scale_invariant_weights
from sgdtemp.params import ParameterError
from sgdtemp.store import config_key
from sgdtemp.train import run_training, training_config

from test_train import synthetic_dataset  # noqa: E402  (tests/test_train.py)

FAST = dict(eval_train_examples=64, eval_test_examples=64, device="cpu")
# small_cnn of width 4 on the 8×8 one-channel toy images: a few ms a step
CNN = dict(dataset="fashion_mnist", model="small_cnn", width=4, augment=False, **FAST)


@pytest.fixture(autouse=True)
def _one_thread():
    """These networks are tiny: a second thread only adds synchronisation, which on a busy
    machine (a sweep on every core) turns seconds into minutes."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _capture(monkeypatch) -> list[torch.nn.Module]:
    """The networks ``run_training`` builds, kept for inspection after the run."""
    built: list[torch.nn.Module] = []
    original = train.build_model

    def keep(*a, **k):
        m = original(*a, **k)
        built.append(m)
        return m

    monkeypatch.setattr(train, "build_model", keep)
    return built


# ---------------------------------------------------------------- which weights
def test_small_cnn_has_three_scale_invariant_convolutions_and_the_mlp_none():
    assert scale_invariant_weights(build_model("small_cnn")) == ["0.weight", "4.weight", "8.weight"]
    assert scale_invariant_weights(build_model("mlp")) == []
    res = scale_invariant_weights(build_model("resnet", width=4))
    convs = [n for n, m in build_model("resnet", width=4).named_modules()
             if isinstance(m, torch.nn.Conv2d)]
    assert res == [f"{n}.weight" for n in convs] and len(res) == 10  # every conv has its BN


def test_a_conv_whose_output_also_goes_elsewhere_is_not_scale_invariant():
    class Branch(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 3, padding=1, bias=False)
            self.bn = torch.nn.BatchNorm2d(2)
            self.conv2 = torch.nn.Conv2d(1, 2, 3, padding=1)
            self.pool = torch.nn.MaxPool2d(2)
            self.bn2 = torch.nn.BatchNorm2d(2)
            self.relu = torch.nn.ReLU()
            self.conv3 = torch.nn.Conv2d(1, 2, 3, padding=1)
            self.bn3 = torch.nn.BatchNorm2d(2)

        def forward(self, x):
            z = self.conv(x)
            a = self.bn(z) + z  # z is seen unnormalised too: not invariant
            b = self.bn2(self.pool(self.conv2(x)))  # a bias and a max-pool: still invariant
            c = self.bn3(self.relu(self.conv3(x)))  # a biased ReLU in between: not invariant
            return a + b + c

    assert scale_invariant_weights(Branch()) == ["conv2.weight"]


@pytest.mark.parametrize("name,kw", [("small_cnn", {}), ("resnet", {"width": 4})])
def test_the_identified_weights_are_scale_invariant_in_training_mode(name, kw):
    torch.manual_seed(0)
    model = build_model(name, **kw).train()
    x = torch.randn(16, 3, 32, 32)
    params = dict(model.named_parameters())
    before = model(x).detach()
    with torch.no_grad():
        for n in scale_invariant_weights(model):
            params[n].mul_(3.0)
    after = model(x).detach()
    torch.testing.assert_close(after, before, rtol=1e-3, atol=1e-4)  # up to BatchNorm's ε
    with torch.no_grad():  # the final linear layer is not
        params[[n for n in params if n.endswith("weight")][-1]].mul_(3.0)
    assert (model(x) - before).abs().max() > 0.1 * before.abs().max()


# ---------------------------------------------------------------- what is recorded
def test_recorded_norms_equal_a_direct_computation(monkeypatch):
    built = _capture(monkeypatch)
    cfg = dict(CNN, lr=0.1, batch_size=16, epochs=3, weight_decay=1e-2, record_weight_norms=True)
    r = run_training(cfg, progress=False, data=synthetic_dataset())
    c = r["curves"]
    assert r["scale_invariant_weights"] == ["0.weight", "4.weight", "8.weight"]
    for k in ("weight_sq_norm", "weight_sq_norm_per_layer", "effective_temperature",
              "effective_temperature_per_layer"):
        assert len(c[k]) == len(c["epoch"]) == 4, k
    # epoch 0: the seeded initial weights; the last epoch: the trained network's
    torch.manual_seed(0)
    init = build_model("small_cnn", 4, 1, width=4)
    final = dict(built[-1].named_parameters())
    for e, params in ((0, dict(init.named_parameters())), (3, final)):
        direct = [float((params[n].detach().double() ** 2).sum()) for n in r["scale_invariant_weights"]]
        assert c["weight_sq_norm_per_layer"][e] == pytest.approx(direct, rel=1e-12)
        assert c["weight_sq_norm"][e] == pytest.approx(sum(direct), rel=1e-12)
    T = 0.1 / 16
    for e in range(4):
        assert c["effective_temperature"][e] == pytest.approx(T / c["weight_sq_norm"][e], rel=1e-12)
        assert c["effective_temperature_per_layer"][e] == pytest.approx(
            [T / v for v in c["weight_sq_norm_per_layer"][e]], rel=1e-12)


def test_a_cyclic_schedule_records_the_temperature_of_each_epochs_last_step():
    cfg = dict(CNN, lr=0.1, batch_size=16, epochs=3, schedule="cyclic_lr", cycle_ratio=4.0,
               cycle_epochs=2.0, record_weight_norms=True)
    r = run_training(cfg, progress=False, data=synthetic_dataset())
    steps = 256 // 16
    lrs = r["schedule_trace"]["lr"]
    T = [r["curves"]["effective_temperature"][e] * r["curves"]["weight_sq_norm"][e] for e in range(4)]
    assert T[0] == pytest.approx(0.1 / 4 / 16)  # the first step: the cold end of the cycle
    assert T[1:] == pytest.approx([lrs[e * steps - 1] / 16 for e in (1, 2, 3)])


def test_norms_are_recorded_only_when_asked_and_old_keys_stand():
    r = run_training(dict(CNN, lr=0.1, batch_size=32, epochs=1), progress=False,
                     data=synthetic_dataset())
    assert "weight_sq_norm" not in r["curves"] and "scale_invariant_weights" not in r
    base = training_config(lr=0.1)
    assert base["record_weight_norms"] is False and base["shift_strength"] == 1.0
    old = {k: v for k, v in base.items() if k not in ("record_weight_norms", "shift_strength")}
    assert config_key(base) == config_key(old)
    assert config_key({**base, "record_weight_norms": True}) != config_key(base)
    assert config_key({**base, "shift_strength": 0.3}) != config_key(base)


@pytest.mark.parametrize("kw,name", [
    (dict(record_weight_norms=1), "record_weight_norms"),
    (dict(shift_strength=1.5), "shift_strength"), (dict(shift_strength=1), "shift_strength"),
])
def test_bad_new_options_are_one_sentence(kw, name):
    with pytest.raises(ParameterError) as e:
        training_config(**kw)
    assert str(e.value).startswith(name)


# ---------------------------------------------------------------- the equilibrium
def test_without_weight_decay_the_norm_can_only_grow():
    """g ⊥ w: a step adds η²|g|² to |w|² of every scale-invariant layer (to rounding)."""
    r = run_training(dict(CNN, lr=0.2, batch_size=16, epochs=6, record_weight_norms=True),
                     progress=False, data=synthetic_dataset())
    per = np.array(r["curves"]["weight_sq_norm_per_layer"])
    assert np.all(np.diff(per, axis=0) > 0)


def _mean_sq_gradient(model, data, names, batch_size):
    """E|g_l|² per layer over one pass of batches of ``batch_size`` (training mode), with
    the gradient of the batch loss alone (weight decay excluded)."""
    model.train()
    params = dict(model.named_parameters())
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    x = train.normalise(data.x_train, mean, std)
    out = np.zeros(len(names))
    n_batches = len(data.y_train) // batch_size
    perm = torch.randperm(len(data.y_train), generator=torch.Generator().manual_seed(1))
    for i in range(n_batches):
        idx = perm[i * batch_size:(i + 1) * batch_size]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), data.y_train[idx])
        grads = torch.autograd.grad(loss, [params[n] for n in names])
        out += [float((g.double() ** 2).sum()) for g in grads]
    return out / n_batches


def _random_label_dataset(n: int, seed: int = 0) -> Dataset:
    """8×8 one-channel noise images with random labels: nothing to learn but memorisation,
    so the minibatch gradient stays noisy and the loss cannot fall to zero quickly."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randint(0, 256, (n, 1, 8, 8), generator=g, dtype=torch.uint8)
    return Dataset(name="fashion_mnist", x_train=x, y_train=y, x_test=x[:64], y_test=y[:64],
                   x_shift=x[64:128], y_shift=y[64:128], n_classes=4, mean=(0.5,), std=(0.3,),
                   classes=("a", "b", "c", "d"), train_index=np.arange(n))


def test_with_weight_decay_the_norm_settles_near_the_predicted_balance(monkeypatch):
    """Coupled decay λ: |w_l|² relaxes (rate ~4ηλ a step: ~80 steps here, 2.6 epochs) towards
    η E|g_l|²/(2λ), which itself drifts as the network memorises. The recorded norms of the
    last five epochs must be within a factor 1.5 of that balance computed from the final
    network's minibatch gradients (measured: within 25%), and they must grow far more slowly
    than without decay (measured: +15% over the last ten epochs against +43%)."""
    built = _capture(monkeypatch)
    data = _random_label_dataset(512)
    lr, B, lam, epochs = 0.1, 16, 0.03, 40
    r = run_training(dict(CNN, lr=lr, batch_size=B, epochs=epochs, weight_decay=lam,
                          record_weight_norms=True), progress=False, data=data)
    per = np.array(r["curves"]["weight_sq_norm_per_layer"])
    settled = per[-5:].mean(axis=0)
    predicted = lr * _mean_sq_gradient(built[-1], data, r["scale_invariant_weights"], B) / (2 * lam)
    assert np.all(settled / predicted < 1.5) and np.all(predicted / settled < 1.5)
    free = run_training(dict(CNN, lr=lr, batch_size=B, epochs=epochs, record_weight_norms=True),
                        progress=False, data=data)

    def growth(rec):  # relative growth of the summed norm over the last ten epochs
        w = np.array(rec["curves"]["weight_sq_norm"])
        return w[-10:].mean() / w[-20:-10].mean() - 1

    assert growth(r) < 0.5 * growth(free)
    assert free["curves"]["weight_sq_norm"][-1] > 4 * r["curves"]["weight_sq_norm"][-1]


def test_equal_temperature_runs_share_the_equilibrium_of_the_noise_dominated_toy():
    """A scale-invariant toy where minibatch noise dominates: ℓ_i(w) = ½(x_iᵀw/|w| − y_i)²
    with labels of pure noise. Plain SGD with coupled decay at (η, B) and (4η, 4B): the
    stationary |w|² is the same (|w|⁴ ≈ T·tr Σ̃/(2λ) depends on T = η/B alone) and close to
    that prediction, with tr Σ̃ the per-example gradient covariance at |w| = 1."""
    rng = np.random.default_rng(0)
    n, d = 4000, 20
    X = torch.tensor(rng.normal(size=(n, d)))
    y = torch.tensor(rng.normal(size=n))

    def run(lr, B, lam, steps, seed):
        g = torch.Generator().manual_seed(seed)
        w = torch.randn(d, generator=g, dtype=torch.float64) * 0.1
        norms = []
        for k in range(steps):
            idx = torch.randint(0, n, (B,), generator=g)
            w = w.detach().requires_grad_(True)
            loss = 0.5 * ((X[idx] @ (w / w.norm()) - y[idx]) ** 2).mean()
            (grad,) = torch.autograd.grad(loss, w)
            w = (w - lr * (grad + lam * w)).detach()
            if k >= steps // 2:
                norms.append(float(w @ w))
        return float(np.mean(norms)), w

    T, lam = 2e-3, 1e-2
    u1, w1 = run(T * 8, 8, lam, 20_000, 0)     # relaxation 1/(4ηλ) ≈ 1,600 steps
    u2, _ = run(T * 32, 32, lam, 5_000, 1)     # the same SDE time in a quarter of the steps
    assert u2 == pytest.approx(u1, rel=0.1)
    # the prediction: per-example gradients at the unit vector w/|w|, their covariance trace
    v = (w1 / w1.norm()).requires_grad_(True)
    r = X @ v - y
    per_ex = r[:, None] * (X - (X @ v)[:, None] * v.detach()[None, :])  # ∇ of ½(xᵀv̂ − y)² at |v| = 1
    tr_sigma = float(per_ex.detach().var(0, unbiased=False).sum())
    assert u1 == pytest.approx(np.sqrt(T * tr_sigma / (2 * lam)), rel=0.15)
