"""Fokker–Planck steady-state solver: wall time and error against grid size.

Reproduce:  python bench/bench_fokker_planck.py     (about half a minute on 2 CPU cores)

Latest figures: bench/README.md. For each grid the script builds the sparse generator
(``fp_operator_1d`` / ``fp_operator_2d``), solves for the steady state (``fp_steady_state``)
and measures the error against a closed form:

* 1-D: L' = θ, D(θ) = 0.2 (1 + θ²) (the power-law density of the fokker_planck chapter),
  against ``stationary_density_1d`` on a 16× finer grid; max error relative to max p.
* 2-D: L = (θ₁² − 1)²/4 + θ₂², isotropic D = 0.15, against the Gibbs density.

Second order in the grid step means the error falls 4× each time the points per axis double.
"""

from __future__ import annotations

import time

import numpy as np

from sgdtemp import fokker_planck as fp


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def one_d(n: int) -> tuple[float, float]:
    dloss = lambda x: x
    diff = lambda x: 0.2 * (1 + x**2)
    x = np.linspace(-8, 8, n)
    p, t = timed(lambda: fp.fp_steady_state(fp.fp_operator_1d(x, dloss, diff)))
    exact = fp.stationary_density_1d(np.linspace(-8, 8, 16 * (n - 1) + 1), dloss, diff)[::16]
    return t, float(np.max(np.abs(p - exact)) / exact.max())


def two_d(n: int) -> tuple[float, float]:
    gx, gy = np.linspace(-2.5, 2.5, n), np.linspace(-2.0, 2.0, n)
    p, t = timed(lambda: fp.fp_steady_state(
        fp.fp_operator_2d(gx, gy, lambda X, Y: (X**3 - X, 2 * Y), 0.15)))
    X, Y = np.meshgrid(gx, gy, indexing="ij")
    gibbs = fp.gibbs_density((gx, gy), (X**2 - 1) ** 2 / 4 + Y**2, 0.3)
    gibbs /= gibbs.sum() * (gx[1] - gx[0]) * (gy[1] - gy[0])
    return t, float(np.max(np.abs(p - gibbs)) / gibbs.max())


def main() -> None:
    print("1-D  points   solve [s]   rel. max error   error ratio")
    prev = None
    for n in (201, 401, 801, 1601, 3201, 6401, 12801):
        t, e = one_d(n)
        print(f"     {n:6d}   {t:9.4f}   {e:14.3e}   {'' if prev is None else f'{prev / e:5.2f}'}")
        prev = e
    print("2-D  points/axis   unknowns   solve [s]   rel. max error   error ratio")
    prev = None
    for n in (41, 81, 161, 321):
        t, e = two_d(n)
        print(f"     {n:11d}   {n * n:8d}   {t:9.3f}   {e:14.3e}   {'' if prev is None else f'{prev / e:5.2f}'}")
        prev = e


if __name__ == "__main__":
    main()
