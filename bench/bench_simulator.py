"""Speed of the many-replica simulators, as ratios measured in one run.

Reproduce:  python bench/bench_simulator.py            (about a minute on 2 CPU cores)
            python bench/bench_simulator.py --quick    (a few seconds)

Measured 2026-11-22 on the 2-core CPU build machine (numpy float64, torch 2.14 CPU, 2 threads):
see bench/README.md for the figures of the latest run.

Two comparisons, each in replica-steps per second (one replica advanced by one step):

1. ``simulate_sgd`` against a naive per-replica Python loop doing the same SGD
   (1-D linear regression as a finite sum, minibatches of B drawn with replacement).
   The naive loop is linear in the number of replicas, so it runs on fewer replicas;
   the ratio compares rates.
2. ``euler_maruyama`` against ``torchsde.sdeint(..., method="euler")`` on the same SDE
   with the same replicas and steps: the double-well drift −(θ³ − θ) with state-dependent
   diagonal noise sqrt(2·0.1·(1 + θ²)), d = 2 (independent coordinates), float64 for both.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from sgdtemp.dynamics import euler_maruyama, simulate_sgd
from sgdtemp.regression import LinearRegression


def best_of(fn, repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls (seconds): the least disturbed by other load."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def naive_sgd(X: np.ndarray, y: np.ndarray, theta0: float, lr: float, batch_size: int,
              n_steps: int, n_replicas: int, seed: int) -> np.ndarray:
    """The same SGD one replica at a time: a Python loop over replicas and steps."""
    rng = np.random.default_rng(seed)
    x, out = X[:, 0], np.empty(n_replicas)
    for r in range(n_replicas):
        th = theta0
        for _ in range(n_steps):
            i = rng.integers(0, x.size, batch_size)
            xi = x[i]
            th -= lr * np.mean(xi * (xi * th - y[i]))
        out[r] = th
    return out


def bench_sgd(n_replicas: int, n_naive: int, n_steps: int, repeats: int) -> dict:
    problem = LinearRegression.gaussian(256, 1, noise_std=0.5, rng=0)
    theta0 = problem.minimizer()
    lr, B = 0.05, 4
    t_vec = best_of(lambda: simulate_sgd(problem, theta0, lr, B, n_steps, n_replicas=n_replicas,
                                         replacement=True, seed=0), repeats)
    t_naive = best_of(lambda: naive_sgd(problem.X, problem.y, float(theta0[0]), lr, B, n_steps,
                                        n_naive, 0), 1)
    vec = n_replicas * n_steps / t_vec
    naive = n_naive * n_steps / t_naive
    return {"simulate_sgd": vec, "naive loop": naive, "ratio": vec / naive}


def bench_sde(n_replicas: int, n_steps: int, repeats: int, dim: int = 2) -> dict:
    import torch
    import torchsde

    dt = 0.01
    drift = lambda th: th * (1.0 - th * th)  # products, not th**3 (a slow generic pow)
    noise = lambda th: np.sqrt(0.2 * (1.0 + th * th))

    t_em = best_of(lambda: euler_maruyama(drift, noise, np.zeros(dim), dt, n_steps,
                                          n_replicas=n_replicas, seed=0), repeats)

    class DoubleWell(torch.nn.Module):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            return y * (1.0 - y * y)

        def g(self, t, y):
            return torch.sqrt(0.2 * (1.0 + y * y))

    sde = DoubleWell()
    y0 = torch.zeros(n_replicas, dim, dtype=torch.float64)
    ts = torch.tensor([0.0, n_steps * dt], dtype=torch.float64)

    def run_torchsde():
        with torch.no_grad():
            torch.manual_seed(0)
            torchsde.sdeint(sde, y0, ts, method="euler", dt=dt)

    t_tsde = best_of(run_torchsde, repeats)
    em = n_replicas * n_steps / t_em
    tsde = n_replicas * n_steps / t_tsde
    return {"euler_maruyama": em, "torchsde euler": tsde, "ratio": em / tsde}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    args = ap.parse_args()
    if args.quick:
        sizes = dict(n_replicas=2000, n_naive=20, n_steps=200, repeats=2)
    else:
        sizes = dict(n_replicas=10000, n_naive=40, n_steps=1000, repeats=3)
    print(f"replicas {sizes['n_replicas']} (naive loop: {sizes['n_naive']}), steps {sizes['n_steps']}")
    sgd = bench_sgd(**sizes)
    print(f"SGD   simulate_sgd {sgd['simulate_sgd']:.3g} replica-steps/s, naive loop "
          f"{sgd['naive loop']:.3g}/s: ratio {sgd['ratio']:.0f}x (target >= 50x)")
    sde = bench_sde(sizes["n_replicas"], sizes["n_steps"], sizes["repeats"])
    print(f"SDE   euler_maruyama {sde['euler_maruyama']:.3g} replica-steps/s, torchsde euler "
          f"{sde['torchsde euler']:.3g}/s: ratio {sde['ratio']:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
