"""Linear and logistic regression as finite sums, with exact Hessians.

These are the exactly solvable test beds of the later chapters: the Hessian of
linear regression is constant, so its SGD noise and stationary law are known in
closed form; logistic regression has an exact, θ-dependent Hessian.
"""

from __future__ import annotations

import numpy as np

from sgdtemp.landscapes import FiniteSumProblem


def _take(a: np.ndarray, idx: np.ndarray | None) -> np.ndarray:
    return a if idx is None else a[idx]


class LinearRegression(FiniteSumProblem):
    """ℓ_i(θ) = ½ (x_iᵀθ − y_i)² + ½ λ ||θ||².

    ∇ℓ_i = (x_iᵀθ − y_i) x_i + λθ;  H = XᵀX/N + λI (constant).
    ``X``: (N, d) inputs, ``y``: (N,) targets, ``l2``: λ ≥ 0.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, l2: float = 0.0):
        self.X = np.asarray(X, dtype=float)
        self.y = np.asarray(y, dtype=float)
        if self.X.ndim != 2 or self.y.shape != (self.X.shape[0],):
            raise ValueError("X must be (N, d) and y must be (N,)")
        self.n_examples, self.dim = self.X.shape
        self.l2 = float(l2)
        self._H = self.X.T @ self.X / self.n_examples + self.l2 * np.eye(self.dim)

    @classmethod
    def gaussian(cls, n_examples: int, dim: int, *, noise_std: float = 0.5,
                 input_scale: float = 1.0, l2: float = 0.0,
                 rng: np.random.Generator | int = 0) -> "LinearRegression":
        """Gaussian inputs x ~ N(0, input_scale² I), teacher θ₀ ~ N(0, I/d),
        y = x·θ₀ + noise_std·ε."""
        rng = np.random.default_rng(rng)
        X = input_scale * rng.standard_normal((n_examples, dim))
        teacher = rng.standard_normal(dim) / np.sqrt(dim)
        y = X @ teacher + noise_std * rng.standard_normal(n_examples)
        return cls(X, y, l2=l2)

    def residuals(self, theta: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        """r_i = x_iᵀθ − y_i, shape (..., b)."""
        X, y = _take(self.X, idx), _take(self.y, idx)
        if idx is None:
            return np.einsum("nd,...d->...n", X, theta) - y
        return np.einsum("...bd,...d->...b", X, theta) - y

    def example_losses(self, theta, idx=None):
        r = self.residuals(theta, idx)
        return 0.5 * r**2 + 0.5 * self.l2 * np.sum(theta**2, -1)[..., None]

    def example_grads(self, theta, idx=None):
        r = self.residuals(theta, idx)
        X = _take(self.X, idx)
        return r[..., None] * X + self.l2 * theta[..., None, :]

    def minibatch_grad(self, theta, idx):
        # Avoid materialising the (R, B, d) per-example gradients.
        r = self.residuals(theta, idx)
        return np.einsum("...b,...bd->...d", r, self.X[idx]) / idx.shape[-1] + self.l2 * theta

    def loss(self, theta):
        r = self.residuals(theta)
        return 0.5 * np.mean(r**2, -1) + 0.5 * self.l2 * np.sum(theta**2, -1)

    def grad(self, theta):
        return theta @ self._H.T - self.X.T @ self.y / self.n_examples

    def hessian(self, theta):
        theta = np.asarray(theta)
        return np.broadcast_to(self._H, theta.shape[:-1] + self._H.shape)

    def minimizer(self) -> np.ndarray:
        """θ* = H⁻¹ Xᵀy/N."""
        return np.linalg.solve(self._H, self.X.T @ self.y / self.n_examples)


class LogisticRegression(FiniteSumProblem):
    """ℓ_i(θ) = log(1 + exp(−s_i x_iᵀθ)) + ½ λ ||θ||², labels s_i ∈ {−1, +1}.

    ∇ℓ_i = −s_i σ(−m_i) x_i + λθ with margin m_i = s_i x_iᵀθ;
    H = (1/N) Σ_i σ(m_i) σ(−m_i) x_i x_iᵀ + λI.
    Labels given as {0, 1} are mapped to {−1, +1}.
    """

    def __init__(self, X: np.ndarray, labels: np.ndarray, l2: float = 0.0):
        self.X = np.asarray(X, dtype=float)
        s = np.asarray(labels)
        if set(np.unique(s)).issubset({0, 1}):
            s = 2 * s - 1
        if not set(np.unique(s)).issubset({-1, 1}):
            raise ValueError("labels must be in {0, 1} or {-1, +1}")
        self.s = s.astype(float)
        if self.X.ndim != 2 or self.s.shape != (self.X.shape[0],):
            raise ValueError("X must be (N, d) and labels must be (N,)")
        self.n_examples, self.dim = self.X.shape
        self.l2 = float(l2)

    def margins(self, theta: np.ndarray, idx: np.ndarray | None = None) -> np.ndarray:
        X, s = _take(self.X, idx), _take(self.s, idx)
        if idx is None:
            return s * np.einsum("nd,...d->...n", X, theta)
        return s * np.einsum("...bd,...d->...b", X, theta)

    def example_losses(self, theta, idx=None):
        m = self.margins(theta, idx)
        return np.logaddexp(0.0, -m) + 0.5 * self.l2 * np.sum(theta**2, -1)[..., None]

    def example_grads(self, theta, idx=None):
        m = self.margins(theta, idx)
        w = -_take(self.s, idx) * _sigmoid(-m)
        return w[..., None] * _take(self.X, idx) + self.l2 * theta[..., None, :]

    def hessian(self, theta):
        m = self.margins(theta)
        w = _sigmoid(m) * _sigmoid(-m)
        if w.ndim == 1:  # one θ: a weighted Gram matrix, one BLAS call
            xtwx = (self.X.T * w) @ self.X
        else:
            xtwx = np.einsum("...n,nd,ne->...de", w, self.X, self.X, optimize=True)
        return xtwx / self.n_examples + self.l2 * np.eye(self.dim)

    def error_rate(self, theta: np.ndarray, X: np.ndarray | None = None,
                   labels: np.ndarray | None = None) -> np.ndarray:
        """Fraction misclassified (on the training set, or on (X, labels))."""
        if X is None:
            return np.mean(self.margins(theta) <= 0, -1)
        s = np.asarray(labels)
        s = 2 * s - 1 if set(np.unique(s)).issubset({0, 1}) else s
        return np.mean(s * np.einsum("nd,...d->...n", X, theta) <= 0, -1)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # stable for large |z|
