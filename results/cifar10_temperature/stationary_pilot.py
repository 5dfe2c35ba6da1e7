"""Pilot of issue 21's stationary grid: the weight-decay equilibrium and the shift strength.

Reproduce (a few CPU-minutes, one thread):
    SGDTEMP_DATA=... nice -n 10 python results/cifar10_temperature/stationary_pilot.py

small_cnn on a class-balanced 10,000-image CIFAR-10 subset, no augmentation, 20 epochs:
weight decay λ = 5e-3 at T = 1e-3 with (η, B) = (0.032, 32) and (0.128, 128) (equal T),
at T = 4e-3 with (0.128, 32) (four times hotter), and one run without weight decay at
(0.128, 128). Every run records the squared norm of its scale-invariant weights each epoch
(``record_weight_norms``). The final networks are then evaluated on 2,000 test images
(the chapter's class-balanced subset) and on their domain-shifted copies at several
corruption strengths s (``sgdtemp.data.domain_shifted``). Prints a report (kept in
stationary_pilot.txt beside this file).
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import torch

import sgdtemp.train as train
from sgdtemp.data import domain_shifted, load_dataset

torch.set_num_threads(1)
N, EPOCHS, LAM = 10_000, 20, 5e-3
STRENGTHS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0]
RUNS = [  # (label, T, B, λ)
    ("T=1e-3 B=32", 1e-3, 32, LAM),
    ("T=1e-3 B=128", 1e-3, 128, LAM),
    ("T=4e-3 B=32", 4e-3, 32, LAM),
    ("T=1e-3 B=128 no decay", 1e-3, 128, 0.0),
]

built: list[torch.nn.Module] = []
_build = train.build_model


def keep(*a, **k):  # the run's own network, to evaluate it after training
    m = _build(*a, **k)
    built.append(m)
    return m


train.build_model = keep
data = load_dataset("cifar10", n_train=N)
_, test_idx = train._evaluation_indices(dict(eval_train_examples=2000, eval_test_examples=2000),
                                        data, N, torch.device("cpu"))
x_test = data.x_test[test_idx]
y_test = data.y_test[test_idx]
x_nhwc = np.ascontiguousarray(data.x_test.numpy().transpose(0, 2, 3, 1))
shifted = {s: torch.from_numpy(np.ascontiguousarray(
    domain_shifted(x_nhwc, strength=s).transpose(0, 3, 1, 2)))[test_idx] for s in STRENGTHS}
mean = torch.tensor(data.mean).view(1, -1, 1, 1)
std = torch.tensor(data.std).view(1, -1, 1, 1)

t0 = time.process_time()
rows = []
for label, T, B, lam in RUNS:
    cfg = train.training_config(model="small_cnn", n_train=N, lr=T * B, batch_size=B, epochs=EPOCHS,
                                weight_decay=lam, augment=False, record_weight_norms=True,
                                eval_train_examples=2000, eval_test_examples=2000, device="cpu")
    r = train.run_training(cfg, progress=False, data=data)
    model = built[-1]
    clean = train.evaluate(model, x_test, y_test, mean, std)
    acc = {s: train.evaluate(model, shifted[s], y_test, mean, std)[1] for s in STRENGTHS}
    rows.append((label, T, B, lam, r, clean, acc))
    print(f"{label}: done, {time.process_time() - t0:.0f} CPU-s so far", flush=True)

print(f"\nsmall_cnn, {N} images, {EPOCHS} epochs, no augmentation; λ = {LAM:g} unless stated; "
      f"{time.process_time() - t0:.0f} CPU-s of training and evaluation in all\n")
print("Summed squared norm |w|² of the three scale-invariant convolutions, by epoch:")
show = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 18, 20]
print(f"{'run':24s}" + "".join(f"{e:>7d}" for e in show))
for label, T, B, lam, r, _, _ in rows:
    w = r["curves"]["weight_sq_norm"]
    print(f"{label:24s}" + "".join(f"{w[e]:7.2f}" for e in show))
print("\nPer layer at the end (|w₁|², |w₂|², |w₃|²), effective temperature T/|w|² (summed), "
      "training loss (mean of the last 5 epochs; first and last epoch), test accuracy:")
for label, T, B, lam, r, clean, _ in rows:
    c = r["curves"]
    per = c["weight_sq_norm_per_layer"][-1]
    tl = c["train_loss"]
    print(f"{label:24s} layers {per[0]:6.2f} {per[1]:6.2f} {per[2]:6.2f}  T/|w|² "
          f"{c['effective_temperature'][-1]:.2e}  train loss {np.mean(tl[-5:]):.3f} "
          f"(epoch 10 {tl[10]:.3f}, epoch 20 {tl[20]:.3f})  test acc {clean[1]:.3f} "
          f"loss {clean[0]:.3f}  ({r['images_per_second']:.0f} images/s)")
print("\nMean of |w|² over epochs 11–20 and its drift (epochs 16–20 minus 11–15):")
for label, T, B, lam, r, _, _ in rows:
    w = np.array(r["curves"]["weight_sq_norm"])
    print(f"{label:24s} {w[11:].mean():7.2f}   drift {w[16:].mean() - w[11:16].mean():+7.2f}")
print("\nShifted test accuracy by corruption strength s (clean accuracy first):")
print(f"{'run':24s} {'clean':>6s}" + "".join(f"{s:>7g}" for s in STRENGTHS))
for label, T, B, lam, r, clean, acc in rows:
    print(f"{label:24s} {clean[1]:6.3f}" + "".join(f"{acc[s]:7.3f}" for s in STRENGTHS))
