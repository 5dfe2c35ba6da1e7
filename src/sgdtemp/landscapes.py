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
        gradient is :func:`minibatch_covariance` of this.
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
