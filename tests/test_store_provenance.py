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


def commit_all(cwd, message):
    git("add", "-A", cwd=cwd)
    git("commit", "-q", "-m", message, cwd=cwd)
    return git("rev-parse", "HEAD", cwd=cwd)


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A package in a repository of its own (``src/pkg``), made the library whose code the
    store records; its names test the hash's order ("a-b.py" sorts before "a/" as a string,
    after it as a path)."""
    r = tmp_path / "proj"
    lib = r / "src" / "pkg"
    (lib / "a").mkdir(parents=True)
    git("init", "-q", cwd=r)
    (lib / "__init__.py").write_text("")
    (lib / "a-b.py").write_text("x = 1\n")
    (lib / "a" / "x.py").write_text("y = 2\n")
    (lib / "notes.txt").write_text("not a source\n")
    (r / "README.md").write_text("outside the library\n")
    commit_all(r, "first")
    monkeypatch.setattr(store, "LIBRARY", lib)
    monkeypatch.setattr(store, "_LOADED", {})  # this process has not loaded it yet
    return lib


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
    assert "sgdtemp_source_sha256" not in r  # the code is code_state's, taken at the start
    assert r["hostname"] == socket.gethostname()
    assert r["platform"] == platform.platform()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists() and "model name" in cpuinfo.read_text():
        line = next(l for l in cpuinfo.read_text().splitlines() if l.startswith("model name"))
        assert r["cpu"] == line.split(":", 1)[1].strip()
    else:
        assert r["cpu"] == (platform.processor() or None)
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


def test_provenance_values_and_creation_time(library):
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    p = store.provenance(wall_time_s=np.float32(2.5), seed=[1, 2], device="cuda:X",
                         runtime={"python": "3.x", "sgdtemp_source_sha256": "stale"},
                         code=store.code_state())
    after = dt.datetime.now(dt.timezone.utc)
    assert p["git_commit"] == git("rev-parse", "HEAD", cwd=library) and p["git_dirty"] is False
    # the code state wins over a runtime that still carries a source hash
    assert p["sgdtemp_source_sha256"] == store.source_hash(library)
    assert p["python"] == "3.x" and p["device"] == "cuda:X" and p["seed"] == [1, 2]
    assert p["wall_time_s"] == 2.5 and type(p["wall_time_s"]) is float
    created = dt.datetime.fromisoformat(p["created"])
    assert created.tzinfo is not None and created.utcoffset() == dt.timedelta(0)
    assert before <= created <= after
    # Without arguments, the runtime and code state of this process and checkout.
    q = store.provenance(wall_time_s=0, seed=0)
    assert q["sgdtemp_source_sha256"] == store.source_hash(library) and q["git_dirty"] is False
    assert q["hostname"] == socket.gethostname()


def test_git_state_when_the_status_cannot_be_read(repo, monkeypatch):
    real = store._git
    monkeypatch.setattr(store, "_git",
                        lambda *args, cwd: None if args[0] == "status" else real(*args, cwd=cwd))
    s = store.git_state(repo)
    assert s["git_commit"] == git("rev-parse", "HEAD", cwd=repo) and s["git_dirty"] is None


# ---------------------------------------------------------------- the code that computed a run
def test_a_commits_source_hash_is_the_hash_of_its_files_on_disk(library):
    proj = library.parents[1]
    first = git("rev-parse", "HEAD", cwd=proj)
    h1 = store.source_hash()
    assert store.commit_source_hash(first) == h1 == store.commit_source_hash("HEAD", library)
    (library / "a-b.py").write_text("x = 3\n")  # edited, not committed
    h2 = store.source_hash()
    assert h2 != h1 and store.commit_source_hash(first) == h1
    second = commit_all(proj, "second")
    assert store.commit_source_hash(second) == h2 and store.commit_source_hash(first) == h1
    (library / "notes.txt").write_text("changed\n")  # not a Python source: same hash
    (proj / "README.md").write_text("changed\n")  # outside the library: same hash
    third = commit_all(proj, "third")
    assert store.commit_source_hash(third) == h2 == store.source_hash()
    # only the commits that changed the library, newest first
    assert store.library_commits() == [third, second, first]


def test_commit_source_hash_is_none_when_git_cannot_tell(library, tmp_path):
    assert store.commit_source_hash("0" * 40) is None
    assert store.commit_source_hash("no-such-branch") is None
    assert store.commit_source_hash(None) is None
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "m.py").write_text("")
    assert store.commit_source_hash("HEAD", plain) is None and store.library_commits(plain) == []


def test_code_state_of_a_clean_tree_names_its_commit(library):
    head = git("rev-parse", "HEAD", cwd=library)
    code = store.code_state()
    assert code == {"git_commit": head, "git_dirty": False,
                    "sgdtemp_source_sha256": store.source_hash()}


def test_a_tree_that_receives_commits_between_runs(library):
    proj = library.parents[1]
    first = store.code_state()  # a run started here, at the first commit
    (library / "a" / "x.py").write_text("y = 20\n")
    second_commit = commit_all(proj, "second")
    store._LOADED.clear()  # the next run in a fresh process (a new worker)
    second = store.code_state()
    assert first["git_commit"] != second["git_commit"] == second_commit
    assert first["git_dirty"] is False and second["git_dirty"] is False
    assert second["sgdtemp_source_sha256"] == store.commit_source_hash(second_commit)
    assert first["sgdtemp_source_sha256"] != second["sgdtemp_source_sha256"]
    # a process that loaded the first commit's library still runs that code: not clean
    (library / "a" / "x.py").write_text("y = 30\n")
    commit_all(proj, "third")
    stale = store.code_state()
    assert stale["git_dirty"] is True
    assert stale["sgdtemp_loaded_source_sha256"] == second["sgdtemp_source_sha256"]
    assert "after this process loaded them" in stale["provenance_note"]


def test_an_untracked_module_is_not_a_clean_tree(library):
    (library / "extra.py").write_text("imported all the same\n")
    assert store.git_state(library)["git_dirty"] is False  # git alone would say clean
    store._LOADED.clear()
    code = store.code_state()
    assert code["git_dirty"] is True and "do not hash to that commit's" in code["provenance_note"]


def test_a_hidden_change_to_a_tracked_file_is_not_a_clean_tree(library):
    git("update-index", "--assume-unchanged", "src/pkg/a-b.py", cwd=library.parents[1])
    (library / "a-b.py").write_text("x = 99\n")
    store._LOADED.clear()
    assert store.git_state(library)["git_dirty"] is False
    assert store.code_state()["git_dirty"] is True


def test_sources_that_change_during_a_run_make_it_dirty(library):
    code = store.code_state()
    assert store.code_state_after(code) == code  # nothing changed
    (library / "a-b.py").write_text("x = 4\n")
    after = store.code_state_after(code)
    assert after["git_dirty"] is True
    assert after["sgdtemp_source_sha256"] == code["sgdtemp_source_sha256"]  # the start's
    assert after["sgdtemp_source_sha256_at_end"] == store.source_hash()
    assert "while the run computed" in after["provenance_note"]


def test_a_clean_claim_that_does_not_match_its_commit_is_refused(library):
    head = git("rev-parse", "HEAD", cwd=library)
    right = store.source_hash()
    claim = {"git_commit": head, "git_dirty": False, "sgdtemp_source_sha256": "0" * 64}
    p = store.provenance(wall_time_s=1, seed=0, runtime={}, code=claim)
    assert p["git_dirty"] is True and "do not hash to that commit's" in p["provenance_note"]
    assert p["sgdtemp_source_sha256"] == "0" * 64  # what was recorded is kept
    unknown = dict(claim, git_commit="1" * 40, sgdtemp_source_sha256=right)
    p = store.provenance(wall_time_s=1, seed=0, runtime={}, code=unknown)
    assert p["git_dirty"] is None and "could not be read" in p["provenance_note"]
    good = dict(claim, sgdtemp_source_sha256=right)
    p = store.provenance(wall_time_s=1, seed=0, runtime={}, code=good)
    assert p["git_dirty"] is False and "provenance_note" not in p
    dirty = dict(claim, git_dirty=True)  # other claims pass unchanged
    assert store.vet_clean_claim(dirty) == dirty


def test_without_git_the_code_state_says_what_is_known(library, monkeypatch):
    monkeypatch.setattr(store, "_git", lambda *args, cwd: None)
    code = store.code_state()
    assert code == {"git_commit": None, "git_dirty": None,
                    "sgdtemp_source_sha256": store.source_hash()}
