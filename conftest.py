"""pytest hooks: run every chapter under nbval at smoke fidelity.

nbval reads ``.ipynb`` only, while the chapters are jupytext MyST markdown. With
``--nbval`` or ``--nbval-lax``, each ``book/<chapter>.md`` is converted in memory,
given ``fidelity = "smoke"`` the way papermill injects parameters, written to
``.nbval/<chapter>.ipynb`` (ignored by git, rewritten every run) and handed to nbval.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent


def pytest_collect_file(file_path: Path, parent):
    opt = parent.config.option
    if not (getattr(opt, "nbval", False) or getattr(opt, "nbval_lax", False)):
        return None
    if file_path.suffix != ".md" or file_path.parent != ROOT / "book":
        return None
    from nbval.plugin import IPyNbFile

    from sgdtemp.chapters import CHAPTER_ORDER, load_notebook

    chapter = file_path.stem
    if chapter not in CHAPTER_ORDER:
        return None
    nb = load_notebook(chapter, parameters={"fidelity": "smoke"})
    out = ROOT / ".nbval" / f"{chapter}.ipynb"
    out.parent.mkdir(exist_ok=True)
    nbformat.write(nb, out)
    return IPyNbFile.from_parent(parent, path=out)
