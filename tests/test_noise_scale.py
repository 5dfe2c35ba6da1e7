"""The gradient noise scale B_simple = tr Σ/|G|² (McCandlish et al. 2018) against a model
where Σ and G are known in closed form.

Linear regression with Gaussian inputs x ~ N(0, I_d), targets y = xᵀθ* + σε and the loss
ℓ = ½(xᵀθ − y)²: at θ = θ* + δ the per-example gradient is g = x xᵀδ − σεx, so

    G = E g = δ,     Σ = Cov g = |δ|² I + δδᵀ + σ² I,
    tr Σ = (d + 1)|δ|² + dσ²,     B_simple = tr Σ/|δ|²   (Isserlis' theorem).

The estimator sees only n sampled examples; tr Σ̂ and |G|²̂ are unbiased, so their
means over many independent samples must match the closed forms within Monte Carlo error,
and the jackknife standard errors must describe the spread they claim to.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sgdtemp.curvature import gradient_noise_scale, gradient_noise_trace


def half_mse(out, y):
    return 0.5 * ((out.squeeze(-1) - y) ** 2).mean()


D, SIGMA = 12, 0.6


def _problem(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    theta_star = torch.randn(D, dtype=torch.float64, generator=gen)
    delta = 0.5 * torch.randn(D, dtype=torch.float64, generator=gen)
    model = torch.nn.Linear(D, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_((theta_star + delta)[None])
    g2 = float(delta @ delta)
    trace = (D + 1) * g2 + D * SIGMA**2
    return model, theta_star, g2, trace


def _sample(theta_star, n, gen):
    x = torch.randn(n, D, dtype=torch.float64, generator=gen)
    y = x @ theta_star + SIGMA * torch.randn(n, dtype=torch.float64, generator=gen)
    return [(x[i:i + 100], y[i:i + 100]) for i in range(0, n, 100)]


def test_noise_scale_estimates_are_unbiased_and_their_errors_calibrated():
    model, theta_star, g2, trace = _problem()
    gen = torch.Generator().manual_seed(1)
    reps, n = 300, 1000
    est = [gradient_noise_scale(model, half_mse, _sample(theta_star, n, gen)) for _ in range(reps)]
    tr = np.array([e["grad_cov_trace"] for e in est])
    gg = np.array([e["grad_sq_norm"] for e in est])
    b = np.array([e["b_simple"] for e in est])
    z = (gg - g2) / np.array([e["grad_sq_norm_stderr"] for e in est])
    zb = (b - trace / g2) / np.array([e["b_simple_stderr"] for e in est])
    # Unbiased: the mean over 300 samples within 4 of its standard errors (a false alarm
    # about once in 16,000 runs of this test).
    assert abs(tr.mean() - trace) < 4 * tr.std(ddof=1) / math.sqrt(reps)
    assert abs(gg.mean() - g2) < 4 * gg.std(ddof=1) / math.sqrt(reps)
    # B̂ is a ratio, biased at O(1/n): within 4 s.e. of the mean plus 1% of B.
    assert abs(b.mean() - trace / g2) < 4 * b.std(ddof=1) / math.sqrt(reps) + 0.01 * trace / g2
    # The jackknife's errors: standardised deviations with spread 1 (the spread of 300
    # draws of a unit normal has a s.e. of 0.04; 16 blocks make the jackknife itself noisy,
    # so 0.8 to 1.25) and centred.
    for zz in (z, zb):
        assert 0.8 < zz.std(ddof=1) < 1.25
        assert abs(zz.mean()) < 0.25


def test_noise_scale_agrees_with_the_per_example_trace_and_an_explicit_computation():
    """An exact identity on one sample (a check of the implementation): tr Σ̂ is the
    unbiased version of gradient_noise_trace's (1/n)Σ|g_i − ḡ|², and |G|²̂ = |ḡ|² − tr Σ̂/n
    with ḡ and g_i computed by hand."""
    model, theta_star, _, _ = _problem()
    batches = _sample(theta_star, 500, torch.Generator().manual_seed(3))
    est = gradient_noise_scale(model, half_mse, batches, n_blocks=10)
    x = torch.cat([b[0] for b in batches])
    y = torch.cat([b[1] for b in batches])
    w = model.weight.detach()[0]
    g = x * (x @ w - y)[:, None]  # per-example gradients, by hand
    n = len(y)
    gbar = g.mean(0)
    tr = float(((g - gbar) ** 2).sum()) / (n - 1)
    assert est["grad_cov_trace"] == pytest.approx(tr, rel=1e-10)
    assert est["grad_cov_trace"] * (n - 1) / n == pytest.approx(
        gradient_noise_trace(model, half_mse, batches), rel=1e-10)
    assert est["grad_sq_norm"] == pytest.approx(float(gbar @ gbar) - tr / n, rel=1e-10)
    assert est["b_simple"] == pytest.approx(tr / (float(gbar @ gbar) - tr / n), rel=1e-10)
    assert est["n_examples"] == n and est["n_blocks"] == 10


def test_noise_scale_is_infinite_at_a_minimum_and_rejects_bad_blocks():
    model, theta_star, _, _ = _problem()
    with torch.no_grad():
        model.weight.copy_(theta_star[None])  # G = 0: |G|²̂ is noise around 0
    batches = _sample(theta_star, 400, torch.Generator().manual_seed(4))
    est = gradient_noise_scale(model, half_mse, batches)
    assert est["grad_sq_norm"] < 3 * est["grad_sq_norm_stderr"]
    with pytest.raises(ValueError, match="n_blocks"):
        gradient_noise_scale(model, half_mse, batches, n_blocks=1)
