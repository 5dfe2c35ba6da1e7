"""The equilibrium of scale-invariant weights under SGD with weight decay
(sgdtemp.batchnorm_temperature): exact identities exactly, the relaxation rate against
the iterated map with a tolerance from its second-order term."""

import numpy as np
import pytest

from sgdtemp import batchnorm_temperature as bt


def test_the_equilibrium_is_the_fixed_point_of_the_exact_step():
    for lr, lam, g2 in [(0.1, 5e-3, 3.0), (1.024, 1e-2, 0.2), (0.016, 2.5e-3, 40.0)]:
        u = bt.equilibrium_sq_norm(lr, lam, g2)
        assert bt.next_sq_norm(u, lr, lam, g2) == pytest.approx(u, rel=1e-13)


def test_without_decay_the_norm_only_grows_by_eta_squared_g_squared_over_u():
    u = 7.0
    assert bt.next_sq_norm(u, 0.2, 0.0, 3.0) == pytest.approx(u + 0.04 * 3.0 / u, rel=1e-15)


def test_the_noise_dominated_equilibrium_depends_on_T_only():
    # E|g̃|² = tr Σ̃/B: equal T = η/B give equal u* up to the ηλ² term of the denominator
    tr = 50.0
    for B in (32, 128, 512):
        lr = 1e-3 * B
        exact = bt.equilibrium_sq_norm(lr, 5e-3, tr / B)
        approx = bt.noise_dominated_sq_norm(1e-3, 5e-3, tr)
        # u*² differs by the factor 2λ/(2λ − ηλ²) = 1/(1 − ηλ/2)
        assert exact / approx == pytest.approx((1 - lr * 5e-3 / 2) ** -0.5, rel=1e-12)


def test_the_norm_relaxes_in_one_over_four_eta_lambda_steps():
    lr, lam, g2 = 0.1, 1e-2, 2.0
    u_star = bt.equilibrium_sq_norm(lr, lam, g2)
    u, steps = 1.01 * u_star, 2000
    for _ in range(steps):
        u = bt.next_sq_norm(u, lr, lam, g2)
    rate = -np.log((u - u_star) / (0.01 * u_star)) / steps
    # the linear factor is 1 − 4ηλ + O((ηλ)²): here ηλ = 1e-3, so the rate is 4ηλ within
    # a few ηλ² (5e-6), and the 1% start adds a nonlinear term of the same order
    assert rate == pytest.approx(4 * lr * lam, abs=2e-5)
    # in epochs of N examples at B: 1/(4ηλ) steps × B/N
    assert bt.relaxation_epochs(lr / 100, lam, 50_000) == pytest.approx(100 / (4 * lr * lam) / 50_000)


def test_effective_temperature_and_drift():
    assert bt.effective_temperature(1e-3, 40.0) == pytest.approx(2.5e-5)
    curve = 30 * np.exp(0.01 * np.arange(20))  # +1% a point
    d = bt.log_drift(curve, 10)
    assert d.change == pytest.approx(0.09, abs=1e-12)  # across 10 points: 9 steps of 1%


def test_settling_epoch_is_where_the_curve_stays_inside_the_band():
    curve = np.concatenate([[50, 40, 32, 31.0], np.full(10, 30.0)])
    assert bt.settling_epoch(curve, 5) == 3   # 32 is 6.7% off; 31 is 3.3% off
    assert bt.settling_epoch(np.full(6, 2.0), 3) == 0
    # a dip that passes through the band does not count as settled
    dip = np.array([35, 31, 28, 27, 28.5, 30, 31, 31, 31, 31.0])
    assert bt.settling_epoch(dip, 4) == 5   # 28.5 (index 4) is 8% below 31


@pytest.mark.parametrize("call, name", [
    (lambda: bt.equilibrium_sq_norm(0.1, 0.0, 1.0), "weight_decay"),
    (lambda: bt.equilibrium_sq_norm(100.0, 0.05, 1.0), "lr·weight_decay"),
    (lambda: bt.relaxation_epochs(1e-3, 5e-3, 0), "n_train"),
    (lambda: bt.settling_epoch([1.0, 2.0], 3), "window"),
    (lambda: bt.log_drift([1.0, -1.0, 2.0], 2), "curve"),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
