"""Chapters: where they are, their parameters, and running one with papermill.

A chapter is a jupytext MyST-markdown notebook ``book/<id>.md`` whose knobs are
declared in ``sgdtemp.presets.<id>``. Running one converts the markdown to a
notebook in memory, injects parameters after the cell tagged ``parameters``
(papermill's convention), executes it and reads back the claims it published.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sgdtemp import claims as claims_mod
from sgdtemp.files import atomic_write_text
from sgdtemp.params import Config, ParameterError, ParameterSet

# Book order, as in _toc.yml (tests/test_book.py checks the two agree). A chapter is
# available once its file exists (later issues add more).
CHAPTER_ORDER = (
    "intro",
    "fokker_planck",
    "two_minima",
    "cifar10_temperature",
    "three_factors",
    "bayesian_evidence",
    "power_law",
    "implicit_regularization",
    "noise_enhancement",
    "reproducing",
    "claims_report",
)


def repo_root() -> Path:
    """The repository holding ``book/`` (``$SGDTEMP_ROOT`` overrides)."""
    env = os.environ.get("SGDTEMP_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def book_dir() -> Path:
    return repo_root() / "book"


def chapter_path(chapter: str) -> Path:
    return book_dir() / f"{chapter}.md"


def available_chapters() -> list[str]:
    return [c for c in CHAPTER_ORDER if chapter_path(c).exists()]


def check_chapter(chapter: str) -> None:
    avail = available_chapters()
    if chapter not in avail:
        raise ParameterError(
            f"chapter must be one of {', '.join(avail)}; got {chapter!r}."
        )


def parameter_set(chapter: str) -> ParameterSet:
    check_chapter(chapter)
    return importlib.import_module(f"sgdtemp.presets.{chapter}").PARAMETERS


def validate(chapter: str, fidelity: str | None = None, **params: Any) -> Config:
    """The chapter's resolved configuration; raises ParameterError on a bad value."""
    return parameter_set(chapter).resolve(fidelity=fidelity, **params)


def check_data(chapter: str, cfg: Config) -> None:
    """Raise DataNotFound (one sentence) when a data set the chapter reads is missing.

    A chapter that reads data declares ``required_datasets(cfg)`` in its presets module.
    A chapter with a ``download`` parameter that is on fetches what is missing itself.
    """
    needs = getattr(importlib.import_module(f"sgdtemp.presets.{chapter}"),
                    "required_datasets", None)
    if needs is None:
        return
    from sgdtemp.data import require_dataset

    has_download = "download" in parameter_set(chapter).names()
    if has_download and cfg.get("download"):
        return
    for name in needs(cfg):
        require_dataset(name, cfg.get("data_dir"), download_param=has_download)


def load_notebook(chapter: str, parameters: dict[str, Any] | None = None):
    """The chapter as an (unexecuted) notebook, with ``parameters`` injected papermill-style."""
    import jupytext

    check_chapter(chapter)
    nb = jupytext.read(chapter_path(chapter))
    for cell in nb.cells:  # papermill expects every cell to carry a tags list
        cell.metadata.setdefault("tags", [])
    nb.metadata.setdefault("papermill", {})
    if parameters:
        from papermill.parameterize import parameterize_notebook

        nb = parameterize_notebook(nb, parameters)
    return nb


@dataclass
class ChapterRun:
    notebook: Path
    claims: list[dict] | None

    @property
    def n_holding(self) -> int:
        return sum(c["holds"] for c in self.claims or [])


class ChapterFailed(RuntimeError):
    """A cell raised while the chapter ran; the partial notebook was kept."""


def run_chapter(chapter: str, out_dir: str | os.PathLike, *, fidelity: str | None = None,
                params: dict[str, Any] | None = None, progress: bool = True) -> ChapterRun:
    """Execute ``book/<chapter>.md`` and write ``out_dir/<chapter>.ipynb`` and
    ``out_dir/claims.json``.

    Parameters are validated first, then the data the chapter reads is looked for: on
    a bad value or missing data ParameterError is raised before any cell runs and
    nothing is created. Both files are written atomically. The kernel talks to papermill
    over local IPC sockets in a private temporary folder (not TCP on localhost).
    """
    import papermill
    from jupyter_client.manager import AsyncKernelManager
    from papermill.exceptions import PapermillExecutionError

    params = dict(params or {})
    cfg = validate(chapter, fidelity=fidelity, **params)
    check_data(chapter, cfg)
    # Pass the resolved fidelity explicitly so the run does not depend on the environment.
    injected = {"fidelity": cfg.fidelity, **params}
    out_dir = Path(out_dir)
    nb_in = load_notebook(chapter)

    with tempfile.TemporaryDirectory(prefix="sgdtemp-run-") as tmp:
        tmp_nb = Path(tmp) / f"{chapter}.ipynb"
        try:
            km = AsyncKernelManager(kernel_name="python3", transport="ipc",
                                    ip=str(Path(tmp) / "kernel"))
            nb = papermill.execute_notebook(
                nb_in, str(tmp_nb), parameters=injected, cwd=str(book_dir()),
                progress_bar=progress, kernel_name="python3", km=km,
            )
            failure = None
        except PapermillExecutionError as e:
            import nbformat

            nb, failure = nbformat.read(tmp_nb, as_version=4), e
        import nbformat

        out_dir.mkdir(parents=True, exist_ok=True)
        nb_path = atomic_write_text(out_dir / f"{chapter}.ipynb", nbformat.writes(nb))
    if failure is not None:
        raise ChapterFailed(
            f"chapter {chapter!r} failed in cell {failure.exec_count}: {failure.ename}: "
            f"{failure.evalue} (the executed notebook is {nb_path})."
        )
    found = claims_mod.claims_from_notebook(nb)
    if found is not None:
        atomic_write_text(out_dir / "claims.json", claims_mod.dumps(found))
    return ChapterRun(nb_path, found)
