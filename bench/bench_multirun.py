"""Throughput of runs trained together in one vectorized group against one after another.

Reproduce:  python bench/bench_multirun.py [--runs 8] [--epochs 1] [--n-train 60000] [--data-dir DIR]

Same process, same configurations: ``--runs`` Fashion-MNIST MLPs (784-256-256-10, B = 128,
different seeds and learning rates), trained

* one after another: ``[sgdtemp.train.run_training(c) for c in configs]``;
* together: ``sgdtemp.train.run_trainings(configs)`` (stacked parameters, one
  ``vmap(grad(...))`` step for all runs).

Images/s are over the training steps only (each record's ``images_per_second``; a group's
runs share one training time), summed over the runs. Then the same for ``small_cnn`` on
CIFAR-10 at 2,048 images: a BatchNorm model, which ``run_trainings`` trains one at a time
(expect ~1×; shown so the fallback's cost is visible). The load average is printed, since
other processes on a 2-core machine change both rates. The last line is the MLP ratio:
``speedup: <together / one after another>x``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as sgdtemp.train does

import torch

from sgdtemp.train import run_training, run_trainings


def rate(records: list[dict], together: bool) -> float:
    """Training images per second over all runs."""
    images = [r["steps"] * r["config"]["batch_size"] for r in records]
    times = [i / r["images_per_second"] for i, r in zip(images, records)]
    return sum(images) / (max(times) if together else sum(times))


def compare(configs: list[dict], label: str) -> float:
    run_training({**configs[0], "epochs": 1, "n_train": 1024}, progress=False)  # warm-up
    t0 = time.perf_counter()
    alone = [run_training(c, progress=False) for c in configs]
    t_alone = time.perf_counter() - t0
    t0 = time.perf_counter()
    together = run_trainings(configs, progress=False)
    t_together = time.perf_counter() - t0
    grouped = configs[0]["model"] == "mlp"
    a, b = rate(alone, False), rate(together, grouped)
    print(f"{label}: one after another {a:,.0f} img/s ({t_alone:.1f} s wall incl. evaluation); "
          f"together {b:,.0f} img/s ({t_together:.1f} s wall); ratio {b / a:.2f}x"
          + ("" if grouped else " (not vectorized: BatchNorm model, one at a time)"))
    return b / a


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--n-train", type=int, default=60_000)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--skip-cnn", action="store_true")
    a = p.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    evals = dict(eval_train_examples=1000, eval_test_examples=1000, device="cpu", data_dir=a.data_dir)
    mlp = [dict(dataset="fashion_mnist", model="mlp", batch_size=128, epochs=a.epochs,
                n_train=a.n_train, seed=s, lr=0.02 * (1 + s % 4), **evals) for s in range(a.runs)]
    ratio = compare(mlp, f"{a.runs} × mlp 784-256-256-10, B = 128, {a.n_train} images × {a.epochs} epochs")
    if not a.skip_cnn:
        cnn = [dict(dataset="cifar10", model="small_cnn", batch_size=128, epochs=1, n_train=2048,
                    seed=s, lr=0.05, **evals) for s in range(min(a.runs, 4))]
        compare(cnn, f"{len(cnn)} × small_cnn, B = 128, 2048 CIFAR-10 images × 1 epoch")
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    print(f"speedup: {ratio:.2f}x")


if __name__ == "__main__":
    main()
