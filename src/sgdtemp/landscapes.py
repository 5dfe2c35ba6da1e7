"""Finite-sum problems: L(θ) = (1/N) Σ_i ℓ_i(θ) with exact derivatives.

Minibatch noise in this book is never injected: it comes from averaging the
per-example gradients of a real finite sum, exactly as in SGD on data.

Array conventions (NumPy): a parameter array ``theta`` has shape ``(..., d)`` —
usually ``(R, d)`` for R replicas; an index array ``idx`` has shape ``(..., b)``
and selects, for every replica, the b examples of its minibatch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np


class FiniteSumProblem(ABC):
    """Base class. Subclasses set ``n_examples`` and ``dim`` and implement
    :meth:`example_losses`, :meth:`example_grads` and :meth:`hessian`; the rest
    follows (override for speed where a closed form is cheaper)."""

    n_examples: int
    dim: int

    # ---- per-example quantities
    @abstractmethod
    def example_losses(self, theta: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """ℓ_i(θ) for i in ``idx`` (all N if None): shape ``(..., b)``."""

    @abstractmethod
    def example_grads(self, theta: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """∇ℓ_i(θ) for i in ``idx`` (all N if None): shape ``(..., b, d)``."""

    @abstractmethod
    def hessian(self, theta: np.ndarray) -> np.ndarray:
        """∇²L(θ): shape ``(..., d, d)``."""

    # ---- full-batch quantities
    def loss(self, theta: np.ndarray) -> np.ndarray:
        """L(θ) = (1/N) Σ_i ℓ_i(θ): shape ``(...)``."""
        return self.example_losses(theta).mean(-1)

    def grad(self, theta: np.ndarray) -> np.ndarray:
        """∇L(θ): shape ``(..., d)``."""
        return self.example_grads(theta).mean(-2)

    def minibatch_grad(self, theta: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """ĝ = (1/b) Σ_{i∈idx} ∇ℓ_i(θ): shape ``(..., d)``."""
        return self.example_grads(theta, idx).mean(-2)

    def noise_covariance(self, theta: np.ndarray) -> np.ndarray:
        """Per-example gradient covariance Σ(θ) = (1/N) Σ_i (∇ℓ_i − ∇L)(∇ℓ_i − ∇L)ᵀ.

        Shape ``(..., d, d)``; units of gradient². The covariance of a minibatch
        gradient is :func:`.minibatch_covariance` of this.
        """
        g = self.example_grads(theta)
        c = g - g.mean(-2, keepdims=True)
        return np.einsum("...nd,...ne->...de", c, c) / self.n_examples


def minibatch_covariance(sigma: np.ndarray, n_examples: int, batch_size: int,
                         replacement: bool = False) -> np.ndarray:
    """Covariance of a minibatch-mean gradient given the per-example covariance Σ.

    With replacement: Σ/B. Without replacement (a simple random sample of B of N):
    Σ/B · (N − B)/(N − 1), the finite-population correction — zero at B = N.
    """
    if replacement:
        return sigma / batch_size
    return sigma / batch_size * (n_examples - batch_size) / (n_examples - 1)


class NoisyPotential(FiniteSumProblem):
    """A finite sum whose gradient noise is known exactly and grows away from a centre.

    ℓ_i(θ) = V(θ) + Σ_k ε_ik F_k(θ_k), with ε_ik = ±s_k in balanced, mutually orthogonal
    sign patterns (exact when ``n_examples`` is a multiple of 2^d), so that
    L(θ) = V(θ) exactly and Σ(θ) = diag(s_k² F_k'(θ_k)²). The profile is
    F_k(θ) = ½ w (u√(1+u²) + arsinh u), u = (θ − c_k)/w_k, whose slope F_k' = √(1 + u²)
    makes the noise grow linearly far from c_k: the diffusion D = ½ T Σ is state dependent.

    ``potential``/``dpotential`` map θ (..., d) to V (...) and ∇V (..., d); the optional
    ``d2potential`` gives ∇²V (..., d, d), which is then also the Hessian of L.
    """

    def __init__(self, potential, dpotential, amplitudes, centres, widths, n_examples,
                 d2potential=None):
        self.V, self.dV, self.d2V = potential, dpotential, d2potential
        self.dim, self.n_examples = len(amplitudes), n_examples
        i = np.arange(n_examples)[:, None]
        signs = np.where((i >> np.arange(self.dim)) % 2 == 0, 1.0, -1.0)  # columns orthogonal
        self.eps = signs * np.asarray(amplitudes, float)
        self.c, self.w = np.asarray(centres, float), np.asarray(widths, float)

    def F(self, th):
        u = (th - self.c) / self.w
        return 0.5 * self.w * (u * np.sqrt(1 + u * u) + np.arcsinh(u))

    def dF(self, th):
        return np.sqrt(1 + ((th - self.c) / self.w) ** 2)

    def example_losses(self, th, idx=None):
        e = self.eps if idx is None else self.eps[idx]
        return self.V(th)[..., None] + (e * self.F(th)[..., None, :]).sum(-1)

    def example_grads(self, th, idx=None):
        e = self.eps if idx is None else self.eps[idx]
        return self.dV(th)[..., None, :] + e * self.dF(th)[..., None, :]

    def minibatch_grad(self, th, idx):
        e = self.eps[idx[..., 0]].copy()
        for j in range(1, idx.shape[-1]):  # a loop over B is cheaper than (R, B, d) arrays
            e += self.eps[idx[..., j]]
        return self.dV(th) + e / idx.shape[-1] * self.dF(th)

    def hessian(self, th):
        if self.d2V is None:
            raise NotImplementedError("pass d2potential to get the Hessian of L = V")
        return self.d2V(th)

    def diffusion(self, th, temperature, kappa=1.0):
        """D(θ) = ½ T κ Σ(θ), diagonal, shape (..., d); κ is a finite-N factor."""
        return 0.5 * temperature * kappa * (self.eps**2).mean(0) * self.dF(th) ** 2
