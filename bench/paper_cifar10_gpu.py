"""Run the ``paper`` grid of the chapter ``cifar10_temperature`` on one GPU.

Reproduce:  python bench/paper_cifar10_gpu.py [--concurrency 8] [--dry-run] [-p NAME VALUE ...]

What it does, top to bottom:

1. resolves the chapter's ``paper`` grid (``sgdtemp.presets.cifar10_temperature``: issue
   21's stationary design on a ResNet on all 50,000 training images — coupled weight decay
   λ = 5e-3 on every run, a decay arm at 0, λ/2 and 2λ, the norms of the scale-invariant
   convolutions and the effective temperature T/|w|² recorded every epoch, the domain
   shift at corruption strength 0.4; ``-p`` overrides any chapter parameter, e.g.
   ``-p weight_decay 0.0 -p decay_arm [] -p shift_strength 1.0`` for the old no-decay
   setup) and asks the results store which runs are missing;
2. estimates what they cost: training images (epochs × ⌊N/B⌋ × B per run), evaluation
   images (three fixed subsets after every epoch) and the curvature's Hessian-vector
   products, and the wall time at ``--assume-rate`` images/s;
3. with ``--dry-run``, lists the runs and that estimate and stops (no GPU needed, nothing
   written);
4. otherwise trains the missing runs through ``sgdtemp.sweep.run_grid``: ``--concurrency``
   worker processes share the GPU (small batches leave most of it idle, so several runs at
   once is what fills it), each with the training images resident on the GPU as uint8
   tensors and bf16 autocast in the forward and backward passes (``sgdtemp.train``: the loss
   is taken in float32, the curvature measured in float32); each run is stored, with its
   provenance, the moment it finishes, so an interrupted run of this script resumes;
5. prints the aggregate training images/s and where the store is.

The store is the committed ``results/cifar10_temperature`` by default: commit the new
``*.json`` files it lists. Exit status: 0 done, 1 some runs failed, 2 bad input or no GPU.
Budget: the grid (36 runs of 30 epochs) is sized for about 15 minutes of one H200 at the
assumed rate; nothing here has been run on one yet (no GPU was lent while it was written),
so the first run's printed rate is the figure to trust, not ``--assume-rate``.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

#: Cost of one Hessian-vector product, in training images (bench/bench_curvature.py: ~3.5
#: gradients, and a gradient costs about one training image).
HVP_COST = 3.5
#: A forward pass costs about a third of a training step (forward + backward).
EVAL_COST = 1 / 3


def run_cost(config: dict) -> dict:
    """Images one run processes: training (epochs × ⌊N/B⌋ × B), evaluation (after epoch 0
    and every epoch: the training, test and shifted-test subsets) and curvature (probes +
    Lanczos iterations, each a Hessian-vector product over the curvature examples), with
    ``weighted`` their sum in training-image equivalents."""
    n = config["n_train"] or 50_000
    B = config["batch_size"]
    train = config["epochs"] * (n // B) * B
    per_eval = config["eval_train_examples"] + 2 * (config["eval_test_examples"] or 10_000)
    evaluation = (config["epochs"] + 1) * per_eval
    curv = 0
    if config["curvature"]:
        curv = (config["curvature_probes"] + config["curvature_iters"]) * config["curvature_examples"]
    return {"train": train, "eval": evaluation, "curvature": curv,
            "weighted": train + EVAL_COST * evaluation + HVP_COST * curv}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python bench/paper_cifar10_gpu.py",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--concurrency", type=int, default=8, help="runs training at once on the GPU")
    p.add_argument("--store", default=None, help="results folder (default: the chapter's, "
                   "results/cifar10_temperature)")
    p.add_argument("--assume-rate", type=float, default=80_000.0,
                   help="aggregate training images/s assumed for the time estimate")
    p.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a chapter parameter for the paper grid (Python literal), repeatable")
    p.add_argument("--dry-run", action="store_true", help="list the missing runs and the estimate; "
                   "train and write nothing")
    return p


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sgdtemp.params import ParameterError
    from sgdtemp.presets.cifar10_temperature import PARAMETERS, training_configs
    from sgdtemp.store import ResultsStore, config_key
    from sgdtemp.train import training_config

    try:
        if args.concurrency < 1:
            raise ParameterError(f"--concurrency must be a positive integer; got {args.concurrency}.")
        if not args.assume_rate > 0:
            raise ParameterError(f"--assume-rate must be a positive number; got {args.assume_rate:g}.")
        params = {}
        for name, value in args.param:
            if name in ("fidelity", "store") or name in params:
                raise ParameterError(f"-p {name} cannot be given here (the fidelity is paper, the "
                                     f"store is --store) or twice.")
            params[name] = _literal(value)
        if args.store is not None:
            params["store"] = args.store
        cfg = PARAMETERS.resolve(fidelity="paper", **params)
        configs = [training_config(**c) for c in training_configs(cfg)]
    except ParameterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    store = ResultsStore(cfg.store)
    todo = store.missing(configs)
    costs = [run_cost(c) for c in todo]
    weighted = sum(c["weighted"] for c in costs)
    print(f"paper grid: {len(configs)} runs ({cfg.model} width {cfg.width}, {cfg.n_train} images, "
          f"{cfg.epochs} epochs, T = {cfg.temperatures}, B = {cfg.batch_sizes}, {cfg.n_seeds} seeds; "
          f"breaking arm β = {cfg.break_betas} × {cfg.break_seeds} seeds; weight decay "
          f"{cfg.weight_decay:g}, decay arm λ = {cfg.decay_arm} × {cfg.decay_arm_seeds} seeds; "
          f"weight norms {'recorded' if cfg.record_weight_norms else 'not recorded'}; shift "
          f"strength {cfg.shift_strength:g}), {len(configs) - len(todo)} already in {store.root}, "
          f"{len(todo)} to train")
    print(f"cost: {sum(c['train'] for c in costs) / 1e6:.1f} M training images, "
          f"{sum(c['eval'] for c in costs) / 1e6:.1f} M evaluated, "
          f"{sum(c['curvature'] for c in costs) / 1e6:.2f} M images of Hessian-vector products; "
          f"{weighted / 1e6:.1f} M training-image equivalents: about "
          f"{weighted / args.assume_rate / 60:.1f} min at {args.assume_rate:,.0f} images/s")
    if args.dry_run:
        for c, k in zip(todo, costs):
            print(f"  {config_key(c)[:12]}  lr={c['lr']:g} B={c['batch_size']} seed={c['seed']} "
                  f"wd={c['weight_decay']:g} epochs={c['epochs']}  {k['weighted'] / 1e6:.2f} M")
        return 0
    import torch

    if not torch.cuda.is_available():
        print("error: this script needs a CUDA GPU and none is visible; use --dry-run to list "
              "the runs.", file=sys.stderr)
        return 2
    if not todo:
        return 0
    from sgdtemp.sweep import run_grid

    t0 = time.perf_counter()
    results = run_grid(todo, store=store, executor="local", n_workers=args.concurrency,
                       threads_per_worker=max(1, (os.cpu_count() or 1) // args.concurrency),
                       progress=True)
    wall = time.perf_counter() - t0
    done = [r for r in results if r is not None]
    images = sum(c["train"] for c, r in zip(costs, results) if r is not None)
    per_run = [r["images_per_second"] for r in done if r.get("images_per_second")]
    print(f"trained {len(done)} runs in {wall:.0f} s on {torch.cuda.get_device_name(0)}: "
          f"{images / wall:,.0f} training images/s aggregate "
          f"(per run {min(per_run, default=0):,.0f}–{max(per_run, default=0):,.0f} images/s, "
          f"{args.concurrency} at once)")
    print(f"{len(results.failures)} failed; the store is {store.root}: commit its new *.json files")
    return 1 if results.failures else 0


if __name__ == "__main__":
    sys.exit(main())
