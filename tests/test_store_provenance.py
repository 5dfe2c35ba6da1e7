"""The provenance stored with every result: its values, not only its fields.

A reference result is trusted through its provenance (which commit, whether the tree was
dirty, which sources, which versions, where and when): a provenance that is present but
wrong is worse than none. Mutation testing found these values unchecked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

import sgdtemp
from sgdtemp import store


def git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                               "HOME": str(cwd), "PATH": "/usr/bin:/bin"}).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    r = tmp_path / "repo"
    r.mkdir()
    git("init", "-q", cwd=r)
    (r / "a.py").write_text("x = 1\n")
    git("add", "a.py", cwd=r)
    git("commit", "-q", "-m", "first", cwd=r)
    return r


def test_git_state_names_the_commit_and_whether_tracked_files_changed(repo):
    head = git("rev-parse", "HEAD", cwd=repo)
    assert len(head) == 40
    assert store.git_state(repo) == {"git_commit": head, "git_dirty": False}
    (repo / "untracked.txt").write_text("not part of the run's code\n")
    assert store.git_state(repo)["git_dirty"] is False  # untracked files do not count
    (repo / "a.py").write_text("x = 2\n")
    assert store.git_state(repo) == {"git_commit": head, "git_dirty": True}


def test_git_state_outside_a_repository_is_none(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert store.git_state(plain) == {"git_commit": None, "git_dirty": None}


def test_git_state_of_the_library_is_its_checkout():
    here = Path(store.__file__).resolve().parent
    try:
        head = git("rev-parse", "HEAD", cwd=here)
    except (subprocess.CalledProcessError, OSError):
        pytest.skip("the library is not in a git checkout here")
    assert store.git_state()["git_commit"] == head


def test_source_hash_is_the_documented_hash_of_the_library_sources():
    root = Path(store.__file__).resolve().parent
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")
    assert store.source_hash() == h.hexdigest()
    assert len({p.name for p in root.rglob("*.py")}) > 10  # the whole package, not one file


def test_runtime_provenance_values():
    r = store.runtime_provenance()
    assert r["python"] == platform.python_version()
    assert r["numpy"] == np.__version__
    assert r["sgdtemp"] == sgdtemp.__version__
    assert r["sgdtemp_source_sha256"] == store.source_hash()
    assert r["hostname"] == socket.gethostname()
    assert r["platform"] == platform.platform()
    import torch

    # Read from the package metadata when torch is not imported yet, which drops the local
    # build tag ("2.14.1" for "2.14.1+cu130"): compare the release.
    assert r["torch"].split("+")[0] == torch.__version__.split("+")[0]


def test_torch_version_comes_from_torch_when_imported_else_from_its_metadata(monkeypatch):
    import importlib.metadata
    import sys

    import torch

    assert store.runtime_provenance()["torch"] == torch.__version__
    monkeypatch.delitem(sys.modules, "torch")  # as in a process that never imported it
    assert store.runtime_provenance()["torch"] == importlib.metadata.version("torch")

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert store.runtime_provenance()["torch"] is None


def test_provenance_values_and_creation_time(repo):
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    p = store.provenance(wall_time_s=np.float32(2.5), seed=[1, 2], device="cuda:X",
                         runtime={"python": "3.x"}, git=store.git_state(repo))
    after = dt.datetime.now(dt.timezone.utc)
    assert p["git_commit"] == git("rev-parse", "HEAD", cwd=repo) and p["git_dirty"] is False
    assert p["python"] == "3.x" and p["device"] == "cuda:X" and p["seed"] == [1, 2]
    assert p["wall_time_s"] == 2.5 and type(p["wall_time_s"]) is float
    created = dt.datetime.fromisoformat(p["created"])
    assert created.tzinfo is not None and created.utcoffset() == dt.timedelta(0)
    assert before <= created <= after
    # Without arguments, the runtime and git state of this process and checkout.
    q = store.provenance(wall_time_s=0, seed=0)
    assert q["sgdtemp_source_sha256"] == store.source_hash() and "git_commit" in q


def test_git_state_when_the_status_cannot_be_read(repo, monkeypatch):
    real = store._git
    monkeypatch.setattr(store, "_git",
                        lambda *args, cwd: None if args[0] == "status" else real(*args, cwd=cwd))
    s = store.git_state(repo)
    assert s["git_commit"] == git("rev-parse", "HEAD", cwd=repo) and s["git_dirty"] is None
