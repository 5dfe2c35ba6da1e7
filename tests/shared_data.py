"""Where the tests find the real data sets, and the skip marker for tests that need one.

The folder is ``$SGDTEMP_DATA``, else ``<repo>/../shared/data`` (CI's offline copy). A test
that needs a data set skips, naming it, when that folder lacks it — also when the folder
exists but is empty — so the non-slow suite passes on a machine without the shared data.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sgdtemp import data as D

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """$SGDTEMP_DATA, else <repo>/../shared/data, if it is a folder."""
    for cand in (os.environ.get(D.DATA_ENV), REPO.parent / "shared" / "data"):
        if cand and Path(cand).is_dir():
            return Path(cand)
    return None


SHARED = shared_data_dir()


def needs(dataset: str):
    """Skip unless the real ``dataset`` ("cifar10", "fashion_mnist") is in :data:`SHARED`."""
    present = SHARED is not None and D.available(dataset, SHARED)
    where = SHARED if SHARED is not None else "$SGDTEMP_DATA or ../shared/data"
    return pytest.mark.skipif(not present, reason=f"real {dataset} data absent from {where}: "
                                                  f"set SGDTEMP_DATA to a folder holding it")
