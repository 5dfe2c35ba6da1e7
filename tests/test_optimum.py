"""The peak of a curve over a log-spaced grid (sgdtemp.optimum)."""

import math

import numpy as np
import pytest

from sgdtemp.stats import log_parabola_peak, peak_over_seeds


def test_log_parabola_peak_is_exact_for_a_parabola_in_log_x():
    # y = −(log x − log 37)², sampled on a factor-2 grid, uneven around the peak.
    x = np.array([4, 8, 16, 32, 64, 128, 256], float)
    y = -(np.log(x) - math.log(37.0)) ** 2
    p = log_parabola_peak(x, y)
    assert p.interior
    assert p.x == pytest.approx(37.0, rel=1e-12)


def test_log_parabola_peak_on_an_uneven_grid():
    x = np.array([1.0, 3.0, 4.0, 20.0])
    y = 5.0 - 2.0 * (np.log(x) - math.log(5.0)) ** 2
    assert log_parabola_peak(x, y).x == pytest.approx(5.0, rel=1e-12)


def test_a_maximum_at_the_edge_is_not_interior():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    assert log_parabola_peak(x, [4.0, 3.0, 2.0, 1.0]) == log_parabola_peak(x, [4.0, 3.0, 2.0, 1.0])
    low = log_parabola_peak(x, [4.0, 3.0, 2.0, 1.0])
    high = log_parabola_peak(x, [1.0, 2.0, 3.0, 4.0])
    assert (low.x, low.interior) == (1.0, False)
    assert (high.x, high.interior) == (8.0, False)


def test_the_vertex_stays_between_the_neighbours():
    rng = np.random.default_rng(3)
    x = 2.0 ** np.arange(6)
    for _ in range(200):
        y = rng.normal(size=6)
        i = int(np.argmax(y))
        p = log_parabola_peak(x, y)
        if 0 < i < 5:
            assert x[i - 1] <= p.x <= x[i + 1]


def test_bad_grids_are_refused():
    with pytest.raises(ValueError, match="increasing"):
        log_parabola_peak([1, 4, 2], [0, 1, 0])
    with pytest.raises(ValueError, match="finite"):
        log_parabola_peak([1, 2, 4], [0, np.nan, 0])
    with pytest.raises(ValueError, match="length"):
        log_parabola_peak([1, 2], [0, 1])


def test_peak_over_seeds_mean_and_standard_error_of_the_log_peaks():
    x = 2.0 ** np.arange(8)
    centres = [10.0, 14.0, 20.0]
    y = np.array([-(np.log(x) - math.log(c)) ** 2 for c in centres])
    est = peak_over_seeds(x, y)
    logs = np.log(centres)
    assert est.per_seed == pytest.approx(centres, rel=1e-12)
    assert est.log_mean == pytest.approx(logs.mean(), rel=1e-12)
    assert est.log_se == pytest.approx(logs.std(ddof=1) / math.sqrt(3), rel=1e-12)
    assert est.x == pytest.approx(math.exp(logs.mean()), rel=1e-12)
    assert est.n_interior == 3
    assert est.of_mean.interior


def test_peak_over_seeds_recovers_a_noisy_peak_within_its_error():
    # 400 seeds of a peak at 30 with noise: the mean log peak is within 4 s.e. of log 30.
    rng = np.random.default_rng(0)
    x = 2.0 ** np.arange(1, 10)
    y = -0.5 * (np.log(x) - math.log(30.0)) ** 2 + rng.normal(0, 0.02, size=(400, len(x)))
    est = peak_over_seeds(x, y)
    assert abs(est.log_mean - math.log(30.0)) < 4 * est.log_se
