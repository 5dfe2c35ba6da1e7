import math

import numpy as np
import pytest

from sgdtemp import stats


def test_mean_se_formula_and_nans():
    x = np.array([1.0, 2.0, 4.0, np.nan])
    m, se = stats.mean_se(x)
    assert m == pytest.approx(7 / 3)
    assert se == pytest.approx(np.std([1, 2, 4], ddof=1) / np.sqrt(3))
    m2, se2 = stats.mean_se(np.array([[1.0, 3.0], [2.0, 6.0]]), axis=0)
    assert np.allclose(m2, [1.5, 4.5]) and np.allclose(se2, [0.5, 1.5])


def test_paired_difference_removes_shared_noise():
    rng = np.random.default_rng(0)
    shared = rng.standard_normal(200) * 10
    a = shared + 1.0 + 0.1 * rng.standard_normal(200)
    b = shared + 0.1 * rng.standard_normal(200)
    d, se = stats.paired_difference(a, b)
    assert abs(d - 1.0) < 4 * se and se < 0.02
    assert stats.difference_se(stats.mean_se(a)[1], stats.mean_se(b)[1]) > 20 * se


def test_weighted_mean_and_pooled_sd():
    m, se = stats.weighted_mean([1.0, 3.0], [1.0, 1.0])
    assert m == 2.0 and se == pytest.approx(1 / np.sqrt(2))
    m, _ = stats.weighted_mean([1.0, 3.0], [1.0, np.inf])
    assert m == 1.0
    a = np.array([[0.0, 2.0], [10.0, 14.0]])  # group variances 2 and 8
    assert stats.pooled_sd(a, axis=1) == pytest.approx(np.sqrt(5))


@pytest.mark.parametrize("kind", ["ordinary", "weighted", "groups", "origin"])
def test_slope_standard_error_has_its_coverage(kind):
    """Over many synthetic data sets the slope's scatter equals its stated s.e."""
    rng = np.random.default_rng(1)
    x = np.repeat(np.linspace(0, 1, 6), 4)
    sig = 0.1 + 0.2 * x
    slopes, ses, icpt, icpt_se = [], [], [], []
    for _ in range(2000):
        y = (0.0 if kind == "origin" else 1.0) + 2.0 * x + sig * rng.standard_normal(x.size)
        if kind == "ordinary":
            y = 1.0 + 2.0 * x + 0.2 * rng.standard_normal(x.size)
            f = stats.slope_se(x, y)
        elif kind == "weighted":
            f = stats.slope_se(x, y, sigma=sig)
        elif kind == "groups":
            y = 1.0 + 2.0 * x + 0.2 * rng.standard_normal(x.size)
            f = stats.slope_se(x, y, groups=x)
        else:
            f = stats.slope_se(x, y, sigma=sig, through_origin=True)
        slopes.append(f.slope)
        ses.append(f.se)
        icpt.append(f.intercept)
        icpt_se.append(f.intercept_se)
    slopes, ses = np.array(slopes), np.array(ses)
    assert abs(slopes.mean() - 2.0) < 4 * slopes.std() / np.sqrt(slopes.size)
    assert np.mean(ses) == pytest.approx(slopes.std(), rel=0.06)
    z = np.abs(slopes - 2.0) / ses
    assert np.mean(z < 3) > 0.985  # t with ≥ 18 dof: 0.992
    if kind != "origin":
        assert np.mean(icpt_se) == pytest.approx(np.std(icpt), rel=0.08)


def test_slope_accepts_broadcastable_arrays_with_nans():
    x = np.array([0.0, 1.0, 2.0])[:, None, None]
    y = np.arange(12.0).reshape(3, 2, 2) / 4 + x
    y[1, 0, 0] = np.nan
    f = stats.slope_se(x, y, groups=x)
    flat = stats.slope_se(np.broadcast_to(x, y.shape).ravel()[np.isfinite(y.ravel())],
                          y.ravel()[np.isfinite(y.ravel())],
                          groups=np.broadcast_to(x, y.shape).ravel()[np.isfinite(y.ravel())])
    assert f == flat


def test_slope_pure_error_ignores_curvature_of_the_mean():
    x = np.repeat([0.0, 1.0, 2.0], 3)
    y = x**2 + np.tile([-0.1, 0.0, 0.1], 3)
    pure = stats.slope_se(x, y, groups=x)
    resid = stats.slope_se(x, y)
    assert pure.slope == pytest.approx(2.0) and pure.se < resid.se / 5


def test_chi_square_bound_and_rate():
    rng = np.random.default_rng(2)
    held = [stats.chi_square(rng.standard_normal(5), level=0.99).holds for _ in range(4000)]
    assert np.mean(held) == pytest.approx(0.99, abs=0.006)
    c = stats.chi_square([3.0, 4.0])
    assert c.stat == 25.0 and c.dof == 2 and c.null_sd == 2.0 and c.p_value < 1e-5


def test_pearson_chi_square_null():
    rng = np.random.default_rng(3)
    K, n = 20, 5000
    stat = [stats.pearson_chi_square(np.bincount(rng.integers(0, K, n), minlength=K),
                                     np.full(K, n / K)).stat for _ in range(500)]
    assert np.mean(stat) == pytest.approx(K - 1, rel=0.05)
    assert np.std(stat) == pytest.approx(np.sqrt(2 * (K - 1)), rel=0.15)


def test_bootstrap_se_of_a_mean():
    x = np.random.default_rng(4).standard_normal(400)
    se, reps = stats.bootstrap(x, np.mean, n_boot=2000, rng=5)
    assert reps.shape == (2000,)
    assert se == pytest.approx(x.std(ddof=1) / 20, rel=0.1)


def test_rates_and_family_tolerance():
    assert stats.two_sided_rate(3.0) == pytest.approx(0.99730, abs=1e-5)
    assert stats.two_sided_rate(3.0, bias=3.0) == pytest.approx(0.5, abs=1e-3)
    assert stats.one_sided_rate(3.0, effect=3.0) == pytest.approx(0.5)
    assert stats.family_z(1) == pytest.approx(3.0)
    assert stats.family_z(7) == pytest.approx(3.55, abs=0.01)
    # the family of k claims at family_z fails as often as one 3-s.e. claim
    k = 10
    assert 1 - stats.two_sided_rate(stats.family_z(k)) ** k == pytest.approx(
        1 - stats.two_sided_rate(3.0), rel=0.01)
    with pytest.raises(ValueError):
        stats.family_z(0)


def test_binomial_below():
    assert stats.binomial_below(5, 5, 0.997) == 1.0
    assert stats.binomial_below(3, 5, 0.997) < 1e-3
    assert stats.binomial_below(4, 5, 0.5) == pytest.approx(31 / 32)


def test_chi_square_power_matches_simulation():
    rng = np.random.default_rng(6)
    K, n = 10, 2000
    p = np.full(K, 1 / K)
    q = p * (1 + 0.15 * np.linspace(-1, 1, K))
    q /= q.sum()
    bound = K - 1 + 3 * np.sqrt(2 * (K - 1))
    lam = n * np.sum((p - q) ** 2 / q)
    rate = stats.chi_square_power(bound, K - 1, lam)
    sim = np.mean([stats.pearson_chi_square(np.bincount(rng.integers(0, K, n), minlength=K),
                                            n * q).stat > bound for _ in range(2000)])
    assert 0.2 < rate < 0.95 and sim == pytest.approx(rate, abs=0.05)
    assert stats.chi_square_power(bound, K - 1, 0.0) < 0.01


def test_gap_fraction_value_and_paired_delta_method_error():
    # d1 = t − b = (2, 2.2, 1.8), d2 = m − b = (4, 4.4, 3.6): f = 0.5 exactly, and the two
    # differences move together (perfectly correlated), so f has no error at all.
    g = stats.gap_fraction([3.0, 3.2, 2.8], [1.0, 1.0, 1.0], [5.0, 5.4, 4.6])
    assert g.fraction == pytest.approx(0.5) and g.se == pytest.approx(0.0, abs=1e-12)
    assert g.contrast == pytest.approx(0.0, abs=1e-12) and g.dof == 2
    # a target cell with fewer seeds (NaN): the means use what each pair has
    g = stats.gap_fraction([3.0, 3.0, 3.0, 3.0], [1.0, 1.0, 1.0, 1.0], [5.0, 5.0, np.nan, np.nan])
    assert (g.n_treated, g.n_target) == (4, 2)


def test_gap_fraction_error_and_contrast_match_simulation():
    """Seeds share a seed effect across the three cells (pairing), t = 0.6, m = 1 (f = 0.6):
    the delta-method error of f matches the spread of f over repetitions within 5%, and the
    contrast D = d̄₁ − 0.6·d̄₂ has mean 0 and the spread its standard error says."""
    rng = np.random.default_rng(1)
    sd, n = 0.05, 10
    fs, ses, zs = [], [], []
    for _ in range(20_000):
        seed = rng.normal(0, 0.3, n)
        t, b, m = (seed + rng.normal(mu, sd, n) for mu in (0.6, 0.0, 1.0))
        g = stats.gap_fraction(t, b, m, f0=0.6)
        fs.append(g.fraction)
        ses.append(g.se)
        zs.append(g.contrast / g.contrast_se)
    assert np.std(fs) == pytest.approx(np.mean(ses), rel=0.05)
    # D/se_D is a t statistic on n − 1 = 9 d.o.f.: s.d. √(9/7) = 1.134
    assert abs(np.mean(zs)) < 0.03 and np.std(zs) == pytest.approx(math.sqrt(9 / 7), abs=0.03)


def test_common_slope_equals_the_fit_with_one_intercept_per_stratum():
    rng = np.random.default_rng(4)
    eps = np.repeat(np.log([0.025, 0.05, 0.1]), 3)           # 3 x-values × 3 seeds per stratum
    x, y, strata, cells = [], [], [], []
    for k, a in enumerate((0.0, 0.7, 1.9)):                   # three strata, different intercepts
        x.append(eps)
        y.append(a + 0.8 * eps + rng.normal(0, 0.1, eps.size))
        strata.append(np.full(eps.size, k))
        cells.append([f"{k}-{v:.3f}" for v in eps])
    x, y, strata, cells = map(np.concatenate, (x, y, strata, cells))
    fit = stats.common_slope(x, y, strata, cells)
    design = np.column_stack([x] + [(strata == k).astype(float) for k in range(3)])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    assert fit.slope == pytest.approx(coef[0], rel=1e-12)
    # pure error: the spread of the seeds around their cell means, 27 points − 9 cells
    means = {c: y[cells == c].mean() for c in set(cells)}
    pure = sum((yi - means[c]) ** 2 for yi, c in zip(y, cells)) / 18
    xc = np.concatenate([x[strata == k] - x[strata == k].mean() for k in range(3)])
    assert fit.dof == 18
    assert fit.se == pytest.approx(np.sqrt(pure / (xc @ xc)), rel=1e-12)


def test_common_slope_error_covers_the_true_slope():
    # Over many noisy data sets the slope lands within 3 of its standard errors ~99.7% of the time.
    rng = np.random.default_rng(5)
    x = np.tile(np.repeat([0.0, 1.0, 2.0], 4), 2)
    strata = np.repeat([0, 1], 12)
    cells = [f"{s}-{v}" for s, v in zip(strata, x)]
    z = []
    for _ in range(3000):
        y = 1.0 * x + 3.0 * strata + rng.normal(0, 0.2, x.size)
        fit = stats.common_slope(x, y, strata, cells)
        z.append((fit.slope - 1.0) / fit.se)
    assert np.mean(np.abs(z) < 3) > 0.985


# ---------------------------------------------------------------- seed-paired comparisons
def test_seed_paired_sd_two_seeds_is_the_spread_of_the_seed_differences():
    x = np.array([[1.0, 1.5], [2.0, 2.1], [0.5, 1.4], [3.0, 3.2]])  # 4 cells × 2 seeds
    d = x[:, 0] - x[:, 1]
    sd, dof = stats.seed_paired_sd(x)
    assert dof == 3 and sd == pytest.approx(np.sqrt(np.var(d, ddof=1) / 2), rel=1e-14)
    # a seed effect shared by every cell, and any cell means, change nothing
    shifted = x + np.array([0.0, 7.0]) + np.array([[10.0], [-3.0], [0.0], [1.0]])
    assert stats.seed_paired_sd(shifted) == (pytest.approx(sd, rel=1e-12), 3)
    # a cell with a NaN is left out whole; too few cells is refused in one sentence
    assert stats.seed_paired_sd(np.vstack([x, [np.nan, 1.0]]))[1] == 3
    with pytest.raises(ValueError, match="^seed_paired_sd needs at least 2 complete cells"):
        stats.seed_paired_sd(x[:1])


def test_seed_paired_sd_estimates_the_noise_and_its_paired_difference_covers():
    """9 cells × 2 seeds with seed effects of s.d. 5 and noise of s.d. 0.2: the estimate
    is unbiased for the variance, and the t-score tolerance on the paired difference of
    two equal cells, t·s·√(2/S), covers at its nominal rate."""
    rng = np.random.default_rng(4)
    sd_true, n_rep, hits, var = 0.2, 4000, 0, []
    for _ in range(n_rep):
        x = 5 * rng.standard_normal(2) + sd_true * rng.standard_normal((9, 2))  # equal cell means
        sd, dof = stats.seed_paired_sd(x)
        var.append(sd**2)
        d = x[0].mean() - x[1].mean()
        hits += abs(d) <= stats.t_multiplier(dof, 2.0) * sd * np.sqrt(2 / 2)
    assert np.mean(var) == pytest.approx(sd_true**2, rel=0.05)
    assert hits / n_rep == pytest.approx(stats.two_sided_rate(2.0), abs=0.015)


def test_detectable_difference_with_known_errors_is_the_normal_formula():
    from scipy import stats as st

    se = 0.7
    delta = stats.detectable_difference(se)  # dof None: a known standard error
    # (3 + z₀.₈)·se up to the far tail P(d̂ < −3se), which the exact solution includes
    assert delta == pytest.approx((3.0 + st.norm.ppf(0.8)) * se, rel=1e-6)
    assert stats.rejection_rate(delta / se, None) == pytest.approx(0.8, abs=1e-9)
    with pytest.raises(ValueError, match="^power must be between 0 and 1"):
        stats.detectable_difference(se, power=1.0)


# ---------------------------------------------------------------- plateau
def test_plateau_change_and_error_are_the_line_fit_over_the_window():
    """y = a + b·t + r over the window, r orthogonal to 1 and t: the fitted change is exactly
    b·(w − 1) and its standard error (w − 1)·√(Σr²/(w − 2)/Σ(t − t̄)²)."""
    w = 6
    t = np.arange(w, dtype=float)
    r = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])
    r -= np.polyval(np.polyfit(t, r, 1), t)  # orthogonal to 1 and t
    b = -0.01
    y = np.concatenate([[9.0, 8.0, 7.0], 2.0 + b * t + 0.003 * r])  # earlier points ignored
    p = stats.plateau(y, w, z=3.0)
    assert p.change == pytest.approx(b * (w - 1), rel=1e-10)
    se = (w - 1) * np.sqrt(np.sum((0.003 * r) ** 2) / (w - 2) / np.sum((t - t.mean()) ** 2))
    assert p.se == pytest.approx(se, rel=1e-10) and p.window == w
    assert p.holds == (abs(p.change) <= 3.0 * se)
    assert not p.holds  # a steady fall of 0.05 through noise of 0.003 is no plateau
    assert stats.plateau(2.0 + 0.003 * r, w).holds  # flat: change 0
    with pytest.raises(ValueError, match="^window must be an integer between 3"):
        stats.plateau(y, 2)
    with pytest.raises(ValueError, match="^window must be an integer between 3"):
        stats.plateau(y[:4], 5)


def test_plateau_epoch_is_the_first_window_end_where_the_curve_is_flat():
    rng = np.random.default_rng(0)
    y = np.concatenate([np.linspace(3.0, 1.0, 10), 1.0 + 0.01 * rng.standard_normal(15)])
    e = stats.plateau_epoch(y, 5)
    assert e is not None and e >= 10
    assert stats.plateau(y[: e + 1], 5).holds and not stats.plateau(y[:e], 5).holds
    assert stats.plateau_epoch(np.linspace(3.0, 1.0, 20), 5) is None  # never flat


def test_plateau_settled_epoch_is_where_every_later_window_is_flat():
    # a descent, a flat stretch, a short dip (detected), then flat again: the curve has
    # settled only after the dip, although it was flat once before it
    w = 5
    r = np.tile([0.01, -0.01], 20)
    y = np.concatenate([np.linspace(3.0, 1.0, 10), np.ones(10), np.linspace(1.0, 0.5, 6),
                        0.5 * np.ones(14)]) + r[:40]
    holds = [stats.plateau(y[: e + 1], w).holds for e in range(w - 1, y.size)]
    e = stats.plateau_settled_epoch(y, w)
    assert e is not None and all(holds[e - (w - 1):]) and not holds[e - 1 - (w - 1)]
    assert stats.plateau_epoch(y, w) < 20 < e  # the first flat window is not the settled one
    assert stats.plateau_settled_epoch(np.linspace(3.0, 1.0, 20) + r[:20], w) is None


def test_a_plateau_of_unknown_change_does_not_hold():
    # what a chapter records for a diverged run: no change measured, so no plateau
    assert not stats.Plateau(float("nan"), float("nan"), 5, 3.0).holds
    assert stats.Plateau(0.03, 0.01, 5, 3.0).holds and not stats.Plateau(0.031, 0.01, 5, 3.0).holds
