"""The committed results are what their provenance says, and `verify` can show it.

* Every committed run recorded as computed from a clean tree at commit C carries C's library
  source hash (the hash of C's tracked sources, read from git): the check that found 343
  mislabelled runs, kept so that no new one comes in.
* ``sgdtemp.verify.correct_provenance`` rewrites a mislabelled run's provenance to say what
  is known, and nothing else of the file.
* ``python -m sgdtemp verify`` computes a stored run again and reports its difference from
  the record: none on this host; a tampered record is reported.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from sgdtemp import cli, store, sweep, verify
from sgdtemp.files import atomic_write_json

RESULTS = Path(__file__).resolve().parents[1] / "results"
FOLDERS = verify.run_folders(RESULTS)


def _in_a_checkout() -> bool:
    return bool(store.library_commits())


@pytest.fixture(scope="module")
def index():
    if not _in_a_checkout():
        pytest.skip("the library is not in a git checkout with its history here")
    return verify.SourceIndex()


def test_the_committed_results_are_found():
    assert {"three_factors", "bayesian_evidence", "noise_enhancement",
            "implicit_regularization", "cifar10_temperature"} <= set(FOLDERS)
    assert "claims_report" not in FOLDERS  # its files are chapter runs, not training runs


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_run_recorded_as_clean_at_a_commit_has_that_commits_sources(folder, index):
    wrong, clean = [], 0
    for run in verify.stored_runs(RESULTS, folder):
        p = run.provenance
        recorded = p.get("sgdtemp_source_sha256")
        assert isinstance(recorded, str) and len(recorded) == 64, run.path
        if p.get("git_dirty") is False:
            clean += 1
            committed = index.of_commit(p["git_commit"])
            assert committed is not None, (f"{run.path}: git cannot read commit "
                                           f"{p['git_commit']} here (a shallow clone?)")
            if committed != recorded:
                wrong.append(f"{run.key[:12]} (clean at {p['git_commit'][:10]}, sources of "
                             f"{(index.commit_of(recorded) or 'no commit')[:10]})")
    assert not wrong, f"{len(wrong)} of {clean} runs recorded as clean: " + ", ".join(wrong[:5])


@pytest.mark.parametrize("folder", FOLDERS)
def test_a_corrected_run_names_the_commit_its_sources_are_from(folder, index):
    for run in verify.stored_runs(RESULTS, folder):
        p = run.provenance
        if "source_matches_commit" not in p:
            continue
        assert p["git_dirty"] is not False and p["provenance_note"]
        if p["source_matches_commit"] is not None:
            assert index.of_commit(p["source_matches_commit"]) == p["sgdtemp_source_sha256"]
        # the file still reads as the run it was: key, config and record untouched
        assert store.ResultsStore(run.path.parent).entry(run.entry["config"]) == run.entry


def test_runs_from_the_sweep_commit_pass():
    """The runs still being computed from a detached worktree of 9dab807 will record its
    source hash: the hash git gives for that commit is the hash of its files."""
    if store.commit_source_hash("9dab807") is None:
        pytest.skip("commit 9dab807 is not in this repository")
    assert store.commit_source_hash("9dab807") == (
        "79695370832b87c66f2bd377f7c1785abb72784911b66ea7f7b53fd461ec58ed")


# ---------------------------------------------------------------- the correction
def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                               "HOME": str(cwd), "PATH": "/usr/bin:/bin"}).stdout.strip()


def _commit(proj, message):
    _git("add", "-A", cwd=proj)
    _git("commit", "-q", "-m", message, cwd=proj)
    return _git("rev-parse", "HEAD", cwd=proj)


def test_correct_provenance_says_what_is_known_and_changes_nothing_else(tmp_path, monkeypatch):
    proj = tmp_path / "proj"
    lib = proj / "pkg"
    lib.mkdir(parents=True)
    _git("init", "-q", cwd=proj)
    (lib / "engine.py").write_text("v = 1\n")
    c1 = _commit(proj, "first")
    (lib / "engine.py").write_text("v = 2\n")
    c2 = _commit(proj, "second")
    monkeypatch.setattr(store, "LIBRARY", lib)
    h1, h2 = store.commit_source_hash(c1), store.commit_source_hash(c2)

    results = tmp_path / "results"
    s = store.ResultsStore(results / "chapter")
    cases = {  # seed: (recorded commit, dirty, recorded hash)
        0: (c1, False, h1),        # true: left alone
        1: (c1, False, h2),        # computed by the second commit's code
        2: (c1, False, "f" * 64),  # by code no commit has
        3: (c2, True, "e" * 64),   # already said dirty: left alone
        4: ("9" * 40, False, h1),  # a commit git cannot read: unknown, not clean
    }
    for seed, (commit, dirty, h) in cases.items():
        s.put({"lr": 0.1, "seed": seed}, {"final": {"loss": seed + 0.5}},
              {"git_commit": commit, "git_dirty": dirty, "sgdtemp_source_sha256": h,
               "cpu_time_s": 1.0})
    atomic_write_json(results / "claims_report" / "x" / "seed1.json", {"claims": []})
    before = {p: p.read_bytes() for p in results.rglob("*.json")}

    assert verify.correct_provenance(results, write=False) == {"chapter": 3}
    assert {p: p.read_bytes() for p in results.rglob("*.json")} == before
    assert verify.correct_provenance(results) == {"chapter": 3}
    after = {p: json.loads(p.read_text()) for p in s.root.glob("*.json")}
    for seed, (commit, dirty, h) in cases.items():
        path = s.path({"lr": 0.1, "seed": seed})
        entry = after[path]
        old = json.loads(before[path])
        assert entry["config"] == old["config"] and entry["record"] == old["record"]
        assert entry["key"] == old["key"] == path.stem
        p = entry["provenance"]
        assert p["sgdtemp_source_sha256"] == h and p["git_commit"] == commit
        if seed in (0, 3):
            assert path.read_bytes() == before[path]
            continue
        assert {k: v for k, v in p.items() if k not in ("git_dirty", "source_matches_commit",
                                                        "provenance_note")} == \
            {k: v for k, v in old["provenance"].items() if k != "git_dirty"}
        assert p["git_dirty"] is (None if seed == 4 else True)
        assert p["source_matches_commit"] == {1: c2, 2: None, 4: c1}[seed]
        assert commit[:10] in p["provenance_note"]
    # corrected runs no longer claim a clean tree: a second pass changes nothing
    again = {p: p.read_bytes() for p in results.rglob("*.json")}
    assert verify.correct_provenance(results) == {"chapter": 0}
    assert {p: p.read_bytes() for p in results.rglob("*.json")} == again
    assert not list(results.rglob(".*.tmp"))  # atomic writes left no temporary file


# ---------------------------------------------------------------- verify
TINY = dict(dataset="fashion_mnist", model="mlp", width=16, n_train=256, batch_size=32,
            epochs=2, eval_train_examples=128, eval_test_examples=64, device="cpu", lr=0.1)


@pytest.fixture
def tiny_results(tmp_path, monkeypatch):
    """A results folder with one chapter of two tiny runs trained together (a group), on
    synthetic images served in place of Fashion-MNIST."""
    from sgdtemp import train
    from tests.test_train import synthetic_dataset

    monkeypatch.setattr(train, "load_dataset", lambda *a, **k: synthetic_dataset())
    results = tmp_path / "results"
    configs = [dict(TINY, seed=0), dict(TINY, seed=1)]
    out = sweep.run_grid(configs, store=results / "tiny", executor="serial", progress=False)
    assert out.n_computed == 2 and not out.failures
    return results


def _tamper(path: Path, delta: float, **provenance) -> None:
    entry = json.loads(path.read_text())
    rec = entry["record"]
    rec["final"]["test_loss"] += delta
    rec["curves"]["test_loss"][-1] += delta
    entry["provenance"].update(provenance)
    atomic_write_json(path, entry)


def test_verify_reproduces_a_run_exactly_on_this_host(tiny_results, capsys):
    runs = verify.select_runs(tiny_results, ["tiny"], max_runs=1)
    assert len(runs) == 1 and runs[0].provenance["group_size"] == 2
    assert [r.key for r in verify.unit_of(runs[0], tiny_results)] == \
        [runs[0].key] + [k for k in sorted(p.stem for p in (tiny_results / "tiny").glob("*.json"))
                         if k != runs[0].key]
    out = verify.verify_runs(runs, tiny_results)
    assert len(out) == 2  # the run and the run it was trained with
    for item in out:
        assert item["same_host"] and item["within"] and item["unit_size"] == 2
        assert item["max_relative"] == 0.0 and not item["problems"]
    assert cli.main(["verify", "tiny", "--results", str(tiny_results), "--max-runs", "1"]) == 0
    text = capsys.readouterr().out
    assert "2 of 2 recomputed runs within the rounding noise" in text and "same host" in text


def test_verify_reports_a_tampered_record(tiny_results, capsys):
    [first, second] = sorted((tiny_results / "tiny").glob("*.json"))
    _tamper(first, 0.2)
    assert cli.main(["verify", "--results", str(tiny_results), "--runs", first.stem[:8]]) == 1
    text = capsys.readouterr().out
    assert "OUTSIDE the rounding noise" in text and "1 of 2 recomputed runs within" in text
    assert "test_loss 2.00e-01" in text
    # Recorded on another host, a difference of 0.05 nats is rounding; 0.2 is not.
    _tamper(first, -0.15, hostname="elsewhere")
    _tamper(second, 0.2, hostname="elsewhere")
    out = verify.verify_runs(verify.select_runs(tiny_results, keys=[first.stem]), tiny_results)
    by_key = {item["key"]: item for item in out}
    assert not by_key[first.stem]["same_host"] and by_key[first.stem]["within"]
    assert by_key[first.stem]["differences"]["final_test_loss"] == pytest.approx(0.05)
    assert not by_key[second.stem]["within"]
    assert "other host" in by_key[second.stem]["tolerance"]


@pytest.mark.parametrize("args,word", [
    (["nowhere"], "CHAPTER"),
    (["--runs", "xyz"], "--runs"),
    (["--runs", "000000"], "--runs"),
    (["--max-runs", "0"], "--max-runs"),
    (["--results", "/nonexistent/folder"], "--results"),
])
def test_verify_bad_input_is_one_sentence_and_exit_2(args, word, capsys, tmp_path):
    extra = [] if "--results" in args else ["--results", str(RESULTS)]
    assert cli.main(["verify", *args, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and word in err


def test_verify_provenance_of_the_committed_results_is_true(capsys, index):
    assert cli.main(["verify", "--provenance", "--results", str(RESULTS)]) == 0
    assert "0 recorded as computed from a clean tree" in capsys.readouterr().out


def test_verify_dry_run_lists_the_cheapest_runs_and_computes_nothing(capsys):
    assert cli.main(["verify", "noise_enhancement", "--max-runs", "1", "--dry-run",
                     "--results", str(RESULTS)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 runs to recompute") and "noise_enhancement" in out
    cheapest = min(verify.stored_runs(RESULTS, "noise_enhancement"), key=lambda r: r.cpu_seconds)
    assert f"recorded CPU time {cheapest.cpu_seconds:.0f} s" in out
