"""The temperature a BatchNorm layer feels: the norm of scale-invariant weights under SGD
with weight decay.

The weights w in front of a BatchNorm layer (the convolutions of ``small_cnn``,
:func:`sgdtemp.models.scale_invariant_weights`) are *scale-invariant*: the loss of every
batch is unchanged under w → cw, c > 0. By Euler's theorem for a function homogeneous of
degree 0 the minibatch gradient g is orthogonal to w and scales as g(w) = g̃(ŵ)/‖w‖, with g̃
the gradient at the unit vector ŵ = w/‖w‖. SGD with coupled weight decay λ
(``torch.optim.SGD(weight_decay=λ)``: w ← (1 − ηλ)w − ηg) therefore changes the squared
norm u = ‖w‖² exactly as

    u_{k+1} = (1 − ηλ)² u_k + η² ‖g̃_k‖² / u_k                     (:func:`next_sq_norm`)

* **λ = 0**: u only grows, by η²‖g̃‖²/u a step; the angle a step turns w by, η‖g̃‖/‖w‖²,
  shrinks as it grows: the *effective temperature* T/‖w‖² of the layer drifts down.
* **λ > 0**: growth and decay balance at u*² = η E‖g̃‖² / (2λ − ηλ²)
  (:func:`equilibrium_sq_norm`). Where the minibatch noise dominates, E‖g̃‖² ≈ tr Σ̃/B with
  Σ̃ the per-example gradient covariance at ‖w‖ = 1, so u*² ≈ T·tr Σ̃/(2λ)
  (:func:`noise_dominated_sq_norm`, T = η/B): the equilibrium depends on T and λ, not on η
  and B apart, and the effective temperature T/u* = (2Tλ/tr Σ̃)^½ on the product Tλ.
  (With the mean gradient ∇L̃ included, E‖g̃‖² = ‖∇L̃‖² + tr Σ̃/B (sampling without
  replacement adds a factor (N − B)/(N − 1) to the second term): at fixed T, u* grows with
  B as [1 + B/B̃]^½ in u*², B̃ = tr Σ̃/‖∇L̃‖² the noise scale of these layers.)
* **Relaxation**: linearising u_{k+1} − u* about u*, the deviation shrinks by a factor
  1 − 4ηλ + O(η²λ²) a step, i.e. it relaxes in 1/(4ηλ) steps = 1/(4TλN) epochs of N
  examples (:func:`relaxation_epochs`).

Units: u in squared weight units (the sum over the layers of Σ w²), T in learning-rate units
per example, λ per step per unit learning rate (torch's convention), epochs of N examples.
The chapter ``cifar10_temperature`` reads the per-epoch curves ``weight_sq_norm`` and
``effective_temperature`` that runs with ``record_weight_norms`` record.
"""

from __future__ import annotations

import numpy as np

from sgdtemp import stats

__all__ = ["effective_temperature", "equilibrium_sq_norm", "log_drift", "next_sq_norm",
           "noise_dominated_sq_norm", "relaxation_epochs", "settling_epoch"]


def _positive(name: str, value) -> np.ndarray:
    a = np.asarray(value, float)
    if not np.all(a > 0):
        raise ValueError(f"{name} must be positive; got {value!r}.")
    return a


def next_sq_norm(sq_norm, lr, weight_decay, grad_sq_unit):
    """‖w‖² after one SGD step with coupled weight decay, exactly:
    (1 − ηλ)²·u + η²·‖g̃‖²/u, with u = ‖w‖² before the step and ‖g̃‖² the squared norm of
    the gradient at ‖w‖ = 1 (the gradient at w is g̃/‖w‖ and orthogonal to w)."""
    u = _positive("sq_norm", sq_norm)
    return (1 - lr * weight_decay) ** 2 * u + lr ** 2 * np.asarray(grad_sq_unit, float) / u


def equilibrium_sq_norm(lr, weight_decay, grad_sq_unit):
    """The fixed point u* of :func:`next_sq_norm` for a constant mean ‖g̃‖²:
    u*² = η·E‖g̃‖² / (2λ − ηλ²), in squared weight units. Requires 0 < ηλ < 2."""
    lr, lam = _positive("lr", lr), _positive("weight_decay", weight_decay)
    if not np.all(lr * lam < 2):
        raise ValueError(f"lr·weight_decay must be below 2 for an equilibrium; got {lr * lam!r}.")
    return np.sqrt(lr * np.asarray(grad_sq_unit, float) / (2 * lam - lr * lam ** 2))


def noise_dominated_sq_norm(temperature, weight_decay, noise_trace_unit):
    """The equilibrium ‖w‖² where the minibatch noise dominates the gradient (B ≪ B̃, B ≪ N)
    and ηλ ≪ 1: u* = (T·tr Σ̃ / (2λ))^½, with tr Σ̃ the trace of the per-example gradient
    covariance at ‖w‖ = 1. Depends on T = η/B and λ only."""
    T, lam = _positive("temperature", temperature), _positive("weight_decay", weight_decay)
    return np.sqrt(T * np.asarray(noise_trace_unit, float) / (2 * lam))


def effective_temperature(temperature, sq_norm):
    """T/‖w‖²: the temperature the direction ŵ of scale-invariant weights feels (a step of
    η turns w by an angle of about η‖g̃‖/‖w‖², so the diffusion of ŵ runs at T/‖w‖²)."""
    return np.asarray(temperature, float) / _positive("sq_norm", sq_norm)


def relaxation_epochs(temperature, weight_decay, n_train: int):
    """Epochs in which ‖w‖² relaxes to its equilibrium: 1/(4TλN) (1/(4ηλ) steps of B
    examples, N/B steps an epoch)."""
    T, lam = _positive("temperature", temperature), _positive("weight_decay", weight_decay)
    if n_train < 1:
        raise ValueError(f"n_train must be a positive number of examples; got {n_train!r}.")
    return 1.0 / (4 * T * lam * n_train)


def log_drift(curve, window: int, z: float = stats.Z_CLAIM) -> stats.Plateau:
    """The least-squares change of log(curve) across its last ``window`` points, ± s.e.
    (:func:`sgdtemp.stats.basic.plateau` on the logarithm): a relative drift, e.g. 0.02 for a
    curve that grew by 2% over the window. The curve must be positive."""
    y = _positive("curve", curve)
    return stats.plateau(np.log(y), window, z)


def settling_epoch(curve, window: int, tolerance: float = 0.05) -> int:
    """The first index from which the curve stays within ``tolerance`` (relative) of the
    mean of its last ``window`` points: when a relaxing quantity has settled, to a
    resolution of one record. The curve's last point always qualifies."""
    y = np.asarray(curve, float)
    if not 1 <= window <= y.size:
        raise ValueError(f"window must be between 1 and the curve's length {y.size}; got {window!r}.")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive; got {tolerance!r}.")
    ref = y[-window:].mean()
    outside = np.flatnonzero(np.abs(y / ref - 1) > tolerance)
    return 0 if outside.size == 0 else int(outside[-1] + 1)
