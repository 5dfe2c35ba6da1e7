"""Tests of sgdtemp.escape: first-passage times, exact on a deterministic problem and
statistically against the exact mean first-passage time on the two-minima loss."""

import numpy as np
import pytest

from sgdtemp.escape import first_passage_times
from sgdtemp.fokker_planck import mean_first_passage_time_1d
from sgdtemp.landscapes import FiniteSumProblem
from sgdtemp.two_minima import make_two_minima_data


class Tilt(FiniteSumProblem):
    """ℓ_i(θ) = −a_i θ: constant gradient −a_i, no curvature (n = len(a), dim 1)."""

    dim = 1

    def __init__(self, a):
        self.a = np.asarray(a, dtype=float)
        self.n_examples = self.a.size

    def example_losses(self, theta, idx=None):
        a = self.a if idx is None else self.a[idx]
        return -a * theta[..., :1]

    def example_grads(self, theta, idx=None):
        a = self.a if idx is None else self.a[idx]
        return np.broadcast_to(-a, np.broadcast_shapes(a.shape, theta.shape[:-1] + (1,)))[..., None] * 1.0

    def hessian(self, theta):
        return np.zeros(theta.shape[:-1] + (1, 1))


def test_deterministic_first_passage_is_exact():
    # All examples agree: θ_k = k η a exactly (η = 0.25 and a = 1 are binary fractions).
    fp = first_passage_times(Tilt([1.0, 1.0]), 0.0, 1.0, 0.25, 1, 5, 100)
    np.testing.assert_array_equal(fp.steps, 4)
    np.testing.assert_array_equal(fp.times, 1.0)
    assert fp.censored == 0
    # Downward target: with a = −1 the replicas move down.
    fp = first_passage_times(Tilt([-1.0]), 0.0, -2.0, 0.5, 1, 3, 100)
    np.testing.assert_array_equal(fp.times, 2.0)


def test_censoring_is_reported_not_averaged():
    fp = first_passage_times(Tilt([1.0]), 0.0, 10.0, 0.25, 1, 4, 8)
    assert fp.censored == 4
    assert np.all(np.isinf(fp.times))
    with pytest.raises(ValueError):
        fp.mean_and_stderr()


def test_seeded_and_bad_inputs():
    p = Tilt([2.0, 0.0, 1.0])
    a = first_passage_times(p, 0.0, 3.0, 0.1, 1, 20, 1000, seed=4)
    b = first_passage_times(p, 0.0, 3.0, 0.1, 1, 20, 1000, seed=4)
    np.testing.assert_array_equal(a.steps, b.steps)
    with pytest.raises(ValueError):
        first_passage_times(p, 0.0, 1.0, -0.1, 1, 2, 10)
    with pytest.raises(ValueError):
        first_passage_times(p, 0.0, 1.0, 0.1, 4, 2, 10)


def test_sgd_escape_time_matches_exact_mfpt():
    # T = 0.002, η = 0.002 (B = 1): mean escape ≈ 3.7 SDE units ≈ 1900 steps.
    # Prediction: exact MFPT with the target moved out by 0.5826·sqrt(2 D η) (the
    # discrete-monitoring correction). First-passage times are independent across
    # replicas, so the s.e. is s/sqrt(R); 4 s.e. gives a false-alarm rate below 1e-4.
    data = make_two_minima_data(20000, 10, 0, 0.0)
    p, b = data.train, data.train.basins()
    grid = np.linspace(-7, 6, 2000)
    ex = p.exact_1d(grid)
    T, lr = 0.002, 0.002
    D = 0.5 * T * ex["sigma"]
    target = b.wide + 0.5825971579390106 * np.sqrt(2 * np.interp(b.wide, grid, D) * lr)
    pred = float(mean_first_passage_time_1d(grid, ex["dloss"], D, b.sharp, target))
    fp = first_passage_times(p, b.sharp, b.wide, lr, 1, 400, int(30 * pred / lr), seed=11)
    mean, se = fp.mean_and_stderr()
    assert abs(mean - pred) < 4 * se
