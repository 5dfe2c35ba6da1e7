"""Cost of one Hessian-vector product relative to one gradient, for small_cnn.

Reproduce:  python bench/bench_curvature.py [--examples 1024] [--width 16] [--repeats 3]

The loss is the mean cross-entropy over ``--examples`` CIFAR-sized images in batches of
256 (as run_training's end-of-run curvature uses), BatchNorm in eval mode. Times (median
of ``--repeats``, after one warm-up call) for: one gradient (sgdtemp.curvature.loss_gradient),
one HVP by double backward (method="autograd", the default) and by forward-over-reverse
(method="jvp"), and tr Σ from per-example gradients (vmap over grad). Prints each time and
its ratio to the gradient. Random inputs: the cost does not depend on the pixel values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as sgdtemp.train does

import torch
import torch.nn.functional as F

from sgdtemp import curvature as C
from sgdtemp.models import small_cnn


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=1024)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args(argv)
    print(f"# reproduce: python bench/bench_curvature.py --examples {a.examples} --width {a.width} "
          f"--repeats {a.repeats}")
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load average {os.getloadavg()[0]:.1f}")
    torch.manual_seed(0)
    model = small_cnn(width=a.width).to(memory_format=torch.channels_last)
    x = torch.randn(a.examples, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (a.examples,))
    with torch.no_grad():
        model(x)  # non-trivial BatchNorm running statistics
    batches = [(x[i:i + 256], y[i:i + 256]) for i in range(0, a.examples, 256)]
    v = {k: torch.randn_like(p) for k, p in model.named_parameters()}
    rows = {
        "gradient": timed(lambda: C.loss_gradient(model, F.cross_entropy, batches), a.repeats),
        "HVP, double backward (default)": timed(
            lambda: C.hessian_vector_product(model, F.cross_entropy, batches, v), a.repeats),
        "HVP, jvp of grad (torch.func)": timed(
            lambda: C.hessian_vector_product(model, F.cross_entropy, batches, v, method="jvp"), a.repeats),
        "tr Σ, per-example grads (vmap)": timed(
            lambda: C.gradient_noise_trace(model, F.cross_entropy, batches), a.repeats),
    }
    g = rows["gradient"]
    for name, t in rows.items():
        print(f"{name:34s} {t * 1e3:9.1f} ms  {t / g:6.2f} × gradient")


if __name__ == "__main__":
    sys.exit(main())
