"""Fixtures shared by the book tests: one strict smoke build per test session.

The build executes every chapter (minutes of CPU), so ``test_book.py`` and
``test_browser.py`` share it. ``SGDTEMP_BOOK_BUILD=DIR`` reuses a build made earlier with
``jupyter-book build . --path-output DIR`` (its HTML is ``DIR/_build/html``) instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class BookBuild:
    out: Path  # the --path-output folder
    returncode: int
    log: str

    @property
    def html(self) -> Path:
        return self.out / "_build" / "html"

    @property
    def executed(self) -> Path:
        return self.out / "_build" / "jupyter_execute"


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> BookBuild:
    given = os.environ.get("SGDTEMP_BOOK_BUILD")
    if given:
        return BookBuild(Path(given), 0, f"(reused the build in {given})")
    out = tmp_path_factory.mktemp("book")
    env = dict(os.environ, SGDTEMP_FIDELITY="smoke")
    jb = Path(sys.executable).with_name("jupyter-book")
    r = subprocess.run([str(jb), "build", str(ROOT), "--path-output", str(out),
                        "-W", "-n", "--keep-going"], capture_output=True, text=True, env=env,
                       timeout=1800)
    return BookBuild(out, r.returncode, r.stdout[-6000:] + r.stderr[-3000:])
