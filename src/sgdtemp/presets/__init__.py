"""One module per chapter, each defining ``PARAMETERS``: a :class:`sgdtemp.params.ParameterSet`.

The module name is the chapter id (``sgdtemp.presets.two_minima`` for ``book/two_minima.md``).
"""

from __future__ import annotations


def training_run_params(chapter: str) -> list:
    """The knobs every chapter with training runs shares: where to train, who computes the
    runs the store lacks, and the store itself (the committed ``results/<chapter>`` at
    default and paper fidelity; a cache folder at smoke, so continuous integration really
    trains)."""
    from sgdtemp.chapters import repo_root
    from sgdtemp.params import Param, in_range, one_of, optional, text
    from sgdtemp.sweep import default_store_dir

    committed = str(repo_root() / "results" / chapter)
    stores = {"smoke": str(default_store_dir() / chapter), "default": committed, "paper": committed}
    return [
        Param("device", {"smoke": "cpu", "default": "cpu", "paper": "auto"},
              one_of("cpu", "cuda", "auto"), "where to train (part of each run's key)"),
        Param("workers", {"smoke": 2, "default": 2, "paper": 1}, in_range(1, 256, integer=True),
              "local worker processes for runs missing from the store (1: in this process)"),
        Param("scheduler", None, optional(text),
              "Dask scheduler address for missing runs (None: local workers)"),
        Param("store", stores, text,
              "results folder (default: the committed results; smoke: a cache folder)"),
    ]
