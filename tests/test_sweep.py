"""Sweeps over the results store: grids, resuming, failures, executors, the CLI.

Most tests use :func:`fake_run`, a cheap deterministic stand-in for
``sgdtemp.train.run_training`` that logs every call to the file named by
$SGDTEMP_TEST_CALLS (so calls made in worker processes are counted too).
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sgdtemp import sweep
from sgdtemp.store import ResultsStore, config_key

HERE = Path(__file__).resolve().parent
CALLS_ENV = "SGDTEMP_TEST_CALLS"


def fake_run(config):
    """A record shaped like the engine's, a pure function of the configuration."""
    log = os.environ.get(CALLS_ENV)
    if log:
        with open(log, "a") as f:
            f.write(config_key(config) + "\n")
    if config.get("fail"):
        raise ValueError("this run was told to fail")
    T = config["lr"] / config["batch_size"]
    epochs = list(range(1, config["epochs"] + 1))
    test_loss = [2.0 / (1 + e * T * 1e3) + 0.01 * config["seed"] for e in epochs]
    diverged = config["lr"] > 10
    return {"config": dict(config), "curves": {"epoch": epochs, "test_loss": test_loss},
            "final": {"test_loss": test_loss[-1]}, "diverged": diverged,
            "diverged_step": 3 if diverged else None, "device": "cpu"}


def interrupt_after(k):
    """A run function that finishes ``k`` runs, then is interrupted (Ctrl-C)."""
    done = []

    def run(config):
        if len(done) == k:
            raise KeyboardInterrupt
        done.append(config)
        return fake_run(config)

    return run


def calls(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


@pytest.fixture
def log(tmp_path, monkeypatch):
    path = tmp_path / "calls.log"
    monkeypatch.setenv(CALLS_ENV, str(path))
    return path


CONFIGS = sweep.temperature_grid([1e-3, 4e-3], [16, 64], seed=[0, 1], epochs=2)


# ---------------------------------------------------------------- grids
def test_grid_is_the_product_of_the_axes_last_fastest():
    assert sweep.grid(lr=[0.1, 0.2], seed=[0, 1], epochs=3) == [
        {"lr": 0.1, "seed": 0, "epochs": 3}, {"lr": 0.1, "seed": 1, "epochs": 3},
        {"lr": 0.2, "seed": 0, "epochs": 3}, {"lr": 0.2, "seed": 1, "epochs": 3}]


def test_temperature_grid_pairs_lr_with_batch_size():
    g = sweep.temperature_grid([1e-3, 2e-3], [32, 128], seed=[0, 1], epochs=2)
    assert len(g) == 8
    assert g[0] == {"lr": 0.032, "batch_size": 32, "seed": 0, "epochs": 2}
    assert g[-1] == {"lr": 0.256, "batch_size": 128, "seed": 1, "epochs": 2}
    # every pair sits exactly at its temperature (lr rounded to 12 digits: 3e-3*32 would
    # otherwise be 0.09600000000000002 and key differently from a typed 0.096)
    assert sweep.lr_for(3e-3, 32) == 0.096
    assert {sweep.temperature_of(c) for c in g} == {1e-3, 2e-3}


# ---------------------------------------------------------------- store-backed sweeps
def test_sweep_stores_every_result_and_a_second_sweep_computes_nothing(tmp_path, log):
    store = ResultsStore(tmp_path / "res")
    first = sweep.run_grid(CONFIGS, fake_run, store=store, executor="serial", progress=False)
    assert len(calls(log)) == len(CONFIGS) and first.n_computed == len(CONFIGS)
    assert first == [fake_run(c) for c in CONFIGS]
    for c in CONFIGS:
        entry = store.entry(c)
        assert entry["provenance"]["wall_time_s"] >= 0 and entry["provenance"]["seed"] == c["seed"]
    log.unlink()
    second = sweep.run_grid(CONFIGS, fake_run, store=store, executor="serial", progress=False)
    assert calls(log) == [] and second == first and second.n_stored == len(CONFIGS)


def test_duplicates_are_computed_once_and_returned_in_order(tmp_path, log):
    configs = [CONFIGS[1], CONFIGS[0], CONFIGS[1]]
    out = sweep.run_grid(configs, fake_run, store=tmp_path, executor="serial", progress=False)
    assert len(calls(log)) == 2
    assert [r["config"] for r in out] == configs


def test_interrupted_sweep_resumes_with_only_the_unfinished_runs(tmp_path, log):
    store = ResultsStore(tmp_path / "res")
    with pytest.raises(KeyboardInterrupt):
        sweep.run_grid(CONFIGS, interrupt_after(3), store=store, executor="serial",
                       progress=False)
    assert len(store) == 3
    assert sorted(os.listdir(store.root)) == sorted(f"{k}.json" for k in store.keys())
    finished = set(calls(log))
    log.unlink()
    out = sweep.run_grid(CONFIGS, fake_run, store=store, executor="serial", progress=False)
    redone = calls(log)
    assert len(redone) == len(CONFIGS) - 3
    assert set(redone) == {config_key(c) for c in CONFIGS} - finished
    assert out.n_stored == 3 and out.n_computed == len(CONFIGS) - 3 and None not in out


KILLED_SWEEP = """
import os, signal, sys
sys.path.insert(0, {here!r})
import test_sweep
from sgdtemp import sweep
done = []
def run(config):
    if len(done) == {k}:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no exception handlers
    done.append(config)
    return test_sweep.fake_run(config)
sweep.run_grid(test_sweep.CONFIGS, run, store={store!r}, executor="serial", progress=False)
"""


def test_sweep_killed_by_sigkill_resumes_with_only_the_unfinished_runs(tmp_path, log):
    store_dir = tmp_path / "res"
    script = KILLED_SWEEP.format(here=str(HERE), k=5, store=str(store_dir))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    store = ResultsStore(store_dir)
    assert len(store) == 5
    assert sorted(os.listdir(store_dir)) == sorted(f"{k}.json" for k in store.keys())
    log.unlink()
    sweep.run_grid(CONFIGS, fake_run, store=store, executor="serial", progress=False)
    assert len(calls(log)) == len(CONFIGS) - 5


def test_failing_run_is_reported_and_the_sweep_goes_on(tmp_path, log):
    configs = CONFIGS[:3] + [{**CONFIGS[3], "fail": True}] + CONFIGS[4:]
    store = ResultsStore(tmp_path / "res")
    with pytest.warns(UserWarning, match="1 of 8 runs failed.*told to fail"):
        out = sweep.run_grid(configs, fake_run, store=store, executor="serial", progress=False)
    bad = config_key(configs[3])
    assert out[3] is None and list(out.failures) == [bad]
    assert all(r is not None for i, r in enumerate(out) if i != 3)
    saved = json.loads((store.root / "failed" / f"{bad}.json").read_text())
    assert "told to fail" in saved["error"]
    # a later sweep retries only the failed run
    log.unlink()
    with pytest.warns(UserWarning):
        sweep.run_grid(configs, fake_run, store=store, executor="serial", progress=False)
    assert calls(log) == [bad]


def test_run_arms_returns_each_arm_nested_as_its_configurations(tmp_path, log):
    cells = [CONFIGS[0:2], CONFIGS[2:4]]               # (cells, seeds)
    arms = {"grid": cells, "single": CONFIGS[4], "flat": CONFIGS[5:8]}
    store = ResultsStore(tmp_path / "res")
    out = sweep.run_arms(arms, store=store, run_fn=fake_run)
    assert list(out) == ["grid", "single", "flat"]
    assert [[r["config"] for r in row] for row in out["grid"]] == cells
    assert out["single"]["config"] == CONFIGS[4]
    assert [r["config"] for r in out["flat"]] == CONFIGS[5:8]
    assert (out.n_runs, out.n_stored, out.n_computed) == (8, 0, 8)
    again = sweep.run_arms(arms, store=store, run_fn=fake_run)
    assert (again.n_stored, again.n_computed) == (8, 0)
    assert again.summary().startswith(f"8 runs: 8 read from {store.root}, 0 computed")


def test_run_arms_raises_after_storing_the_runs_that_did_not_fail(tmp_path, log):
    arms = {"a": CONFIGS[:2], "b": [{**CONFIGS[2], "fail": True}, CONFIGS[3]]}
    store = ResultsStore(tmp_path / "res")
    with pytest.warns(UserWarning), pytest.raises(sweep.RunsFailed,
                                                  match=r"^1 of 4 runs failed; .*failed"):
        sweep.run_arms(arms, store=store, run_fn=fake_run)
    assert store.missing(arms["a"] + arms["b"]) == [arms["b"][0]]


def test_diverged_run_is_a_normal_result(tmp_path):
    c = {"lr": 50.0, "batch_size": 10, "seed": 0, "epochs": 1}
    out = sweep.run_grid([c], fake_run, store=tmp_path, executor="serial", progress=False)
    assert out[0]["diverged"] is True and out.failures == {}
    assert ResultsStore(tmp_path).get(c)["diverged"] is True


# ---------------------------------------------------------------- provenance of each run
def _git(*args, cwd):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
                               "HOME": str(cwd), "PATH": "/usr/bin:/bin"}).stdout.strip()


def _commit(proj, message):
    _git("add", "-A", cwd=proj)
    _git("commit", "-q", "-m", message, cwd=proj)
    return _git("rev-parse", "HEAD", cwd=proj)


@pytest.fixture
def library(tmp_path, monkeypatch):
    """A package in a repository of its own, made the library whose code runs record."""
    from sgdtemp import store as store_mod

    proj = tmp_path / "proj"
    lib = proj / "pkg"
    lib.mkdir(parents=True)
    _git("init", "-q", cwd=proj)
    (lib / "__init__.py").write_text("")
    (lib / "engine.py").write_text("version = 1\n")
    _commit(proj, "first")
    monkeypatch.setattr(store_mod, "LIBRARY", lib)
    monkeypatch.setattr(store_mod, "_LOADED", {})
    return lib


def test_each_run_records_the_code_it_started_with_not_the_sweeps(tmp_path, library):
    """The tree a sweep runs from receives a commit while the first run computes: that run
    is not a clean run of either commit, and the next names the new commit (the old code read
    the commit once, for the whole sweep)."""
    from sgdtemp import store as store_mod

    proj = library.parent
    first = _git("rev-parse", "HEAD", cwd=proj)
    made = []

    def run(config):
        if config["seed"] == 0:  # a commit lands during the first run...
            (library / "engine.py").write_text("version = 2\n")
            made.append(_commit(proj, "second"))
            # ...and the next run is a fresh worker that loads the new code
            store_mod._LOADED[str(library)] = store_mod.source_hash(library)
        return fake_run(config)

    configs = [dict(CONFIGS[0], seed=0), dict(CONFIGS[0], seed=1)]
    store = ResultsStore(tmp_path / "res")
    sweep.run_grid(configs, run, store=store, executor="serial", progress=False)
    p0, p1 = (store.entry(c)["provenance"] for c in configs)
    assert p0["git_commit"] == first and p0["git_dirty"] is True
    assert p0["sgdtemp_source_sha256"] == store_mod.commit_source_hash(first)
    assert p0["sgdtemp_source_sha256_at_end"] == store_mod.commit_source_hash(made[0])
    assert "while the run computed" in p0["provenance_note"]
    assert p1["git_commit"] == made[0] and p1["git_dirty"] is False
    assert p1["sgdtemp_source_sha256"] == store_mod.commit_source_hash(made[0])
    assert "provenance_note" not in p1


def test_a_worker_that_loaded_older_code_does_not_record_a_clean_tree(tmp_path, library):
    from sgdtemp import store as store_mod

    proj = library.parent
    store_mod.loaded_source_hash()  # this process imports the library at the first commit
    (library / "engine.py").write_text("version = 2\n")
    second = _commit(proj, "second")
    store = ResultsStore(tmp_path / "res")
    sweep.run_grid(CONFIGS[:1], fake_run, store=store, executor="serial", progress=False)
    p = store.entry(CONFIGS[0])["provenance"]
    assert p["git_commit"] == second and p["git_dirty"] is True
    assert p["sgdtemp_loaded_source_sha256"] != p["sgdtemp_source_sha256"]


def test_an_untracked_module_makes_a_swept_run_dirty(tmp_path, library):
    (library / "helper.py").write_text("imported, never committed\n")
    store = ResultsStore(tmp_path / "res")
    sweep.run_grid(CONFIGS[:1], fake_run, store=store, executor="serial", progress=False)
    p = store.entry(CONFIGS[0])["provenance"]
    assert p["git_dirty"] is True and "do not hash to that commit's" in p["provenance_note"]


def test_pool_workers_record_their_own_code_state(tmp_path):
    from sgdtemp import store as store_mod

    store = ResultsStore(tmp_path / "res")
    sweep.run_grid(CONFIGS[:2], fake_run, store=store, n_workers=2, progress=False)
    for c in CONFIGS[:2]:
        p = store.entry(c)["provenance"]
        assert len(p["sgdtemp_source_sha256"]) == 64 and "git_commit" in p and p["cpu"] is not None
        if p["git_dirty"] is False:  # a clean tree is recorded only with the commit's sources
            assert p["sgdtemp_source_sha256"] == store_mod.commit_source_hash(p["git_commit"])


# ---------------------------------------------------------------- executors
def _comparable(records):
    return [json.dumps(r, sort_keys=True) for r in records]


def test_local_process_pool_gives_the_serial_records(tmp_path, log):
    serial = sweep.run_grid(CONFIGS, fake_run, store=tmp_path / "a", executor="serial",
                            progress=False)
    pooled = sweep.run_grid(CONFIGS, fake_run, store=tmp_path / "b", n_workers=2,
                            progress=False)
    assert _comparable(pooled) == _comparable(serial)
    assert len(calls(log)) == 2 * len(CONFIGS)  # the workers really ran (and logged) them


def test_dask_local_cluster_gives_the_local_pool_records(tmp_path):
    distributed = pytest.importorskip("distributed")
    pooled = sweep.run_grid(CONFIGS, fake_run, store=tmp_path / "pool", n_workers=2,
                            progress=False)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        # by scheduler address, the way the CLI's --scheduler reaches a cluster
        by_address = sweep.run_grid(CONFIGS, fake_run, store=tmp_path / "dask",
                                    executor=cluster.scheduler_address, progress=False)
        with distributed.Client(cluster) as client:
            by_client = sweep.run_grid(CONFIGS, fake_run, store=tmp_path / "dask2",
                                       executor=client, progress=False)
    assert _comparable(by_address) == _comparable(pooled)
    assert _comparable(by_client) == _comparable(pooled)
    assert sorted(os.listdir(tmp_path / "dask")) == sorted(os.listdir(tmp_path / "pool"))


def _die(config):
    os._exit(3)  # a worker killed mid-run (e.g. out of memory)


def test_a_dying_pool_worker_is_a_failure_not_a_crash(tmp_path):
    with pytest.warns(UserWarning, match="2 of 2 runs failed"):
        out = sweep.run_grid(CONFIGS[:2], _die, store=tmp_path, n_workers=1, progress=False)
    assert out == [None, None] and len(out.failures) == 2
    assert ResultsStore(tmp_path).keys() == []


# ---------------------------------------------------------------- command line
def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sgdtemp", "sweep", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def test_help_documents_the_options():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for opt in ("--store", "--scheduler", "--workers", "--dry-run", "--temperatures",
                "--batch-sizes", "--seeds", "--epochs", "--n-train", "--dataset", "--model",
                "--data-dir", "--preset"):
        assert opt in proc.stdout


@pytest.mark.parametrize("args,word", [
    (["--lrs", "-0.1", "--batch-sizes", "32"], "lr"),
    (["--temperatures", "-0.001", "--batch-sizes", "32"], "temperatures"),
    (["--temperatures", "0.001", "--batch-sizes", "256", "--n-train", "100"], "batch_size"),
    (["--temperatures", "0.001", "--batch-sizes", "32", "--dataset", "imagenet"], "dataset"),
    (["--temperatures", "0.001", "--batch-sizes", "0"], "batch_size"),
    (["--temperatures", "0.001"], "batch-sizes"),
    (["--temperatures", "abc", "--batch-sizes", "32"], "temperatures"),
    (["--preset", "cifar10_temperature:huge"], "fidelity"),
    (["--preset", "nonexistent:default"], "preset"),
    (["--preset", "cifar10_temperature:default", "--seeds", "3"], "seeds"),
])
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(tmp_path, args, word):
    store = tmp_path / "res"
    proc = run_cli(*args, "--store", str(store), "--dry-run" if "--preset" in args else "--no-progress")
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    assert word in err
    assert not store.exists()


def test_dry_run_lists_the_missing_runs_and_writes_nothing(tmp_path):
    store = tmp_path / "res"
    proc = run_cli("--temperatures", "0.001", "0.004", "--batch-sizes", "32", "64",
                   "--seeds", "0", "1", "--epochs", "1", "--n-train", "500",
                   "--store", str(store), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "8 runs, 0 already in" in proc.stdout
    assert proc.stdout.count("batch_size=") == 8
    assert not store.exists()


def test_preset_dry_run_lists_the_chapter_grid(tmp_path):
    proc = run_cli("--preset", "cifar10_temperature:default", "--store", str(tmp_path / "r"),
                   "--dry-run")
    assert proc.returncode == 0, proc.stderr
    n = int(proc.stdout.split()[0])
    assert n >= 18 and proc.stdout.count("batch_size=") == n


# ---------------------------------------------------------------- the real engine
def _data_dir():
    from sgdtemp.data import resolve_data_dir

    root = resolve_data_dir(None)
    if not ((root / "cifar10-jpeg.tar.gz").exists() or (root / "cifar-10-batches-py").is_dir()):
        pytest.skip(f"CIFAR-10 is not in {root} (set SGDTEMP_DATA)")
    return root


def test_real_engine_sweep_of_the_chapter_is_stored_and_read_back(tmp_path):
    _data_dir()
    from sgdtemp.presets import cifar10_temperature as chapter

    cfg = chapter.PARAMETERS.resolve(
        fidelity="smoke", temperatures=[1e-3, 2e-3, 4e-3], batch_sizes=[20, 40], n_train=200,
        epochs=2, plateau_epochs=3,
        n_test=100, curvature_examples=40, curvature_probes=2, curvature_iters=2,
        store=str(tmp_path))
    configs = chapter.training_configs(cfg)[:2]
    out = sweep.run_grid(configs, store=tmp_path, executor="serial", progress=False)
    assert out.n_computed == 2 and out.failures == {}
    for c, r in zip(configs, out):
        assert r["config"] == c
        assert r["curves"]["epoch"] == [0, 1, 2]
        for name in ("train_loss", "test_loss", "shifted_test_loss", "test_acc"):
            assert len(r["curves"][name]) == 3 and r["final"][name] == r["curves"][name][-1]
        assert set(r["curvature"]) >= {"hessian_trace", "hessian_trace_stderr", "top_eigenvalue"}
        prov = ResultsStore(tmp_path).entry(c)["provenance"]
        assert prov["seed"] == c["seed"] and prov["device"] == "cpu" and prov["torch"]
    again = sweep.run_grid(configs, store=tmp_path, executor="serial", progress=False)
    assert again.n_computed == 0 and again == out


def test_cli_computes_a_real_run_then_finds_it_stored(tmp_path):
    _data_dir()
    args = ("--temperatures", "0.002", "--batch-sizes", "25", "--n-train", "100", "--epochs", "1",
            "--device", "cpu", "--workers", "1", "--store", str(tmp_path), "--no-progress")
    first = run_cli(*args)
    assert first.returncode == 0, first.stderr
    assert "1 runs, 0 already in" in first.stdout and "computed 1 runs, 0 failed" in first.stdout
    [entry] = list(ResultsStore(tmp_path))
    assert entry["config"]["lr"] == 0.05 and entry["config"]["batch_size"] == 25
    assert entry["record"]["curves"]["epoch"] == [0, 1]
    second = run_cli(*args)
    assert second.returncode == 0 and "1 runs, 1 already in" in second.stdout


def test_store_only_refuses_missing_runs_before_any_compute(tmp_path, monkeypatch):
    from sgdtemp.sweep import RunsMissing, run_arms

    calls = []

    def run_fn(c):
        calls.append(c)
        return {"x": 1}

    monkeypatch.setenv("SGDTEMP_STORE_ONLY", "1")
    with pytest.raises(RunsMissing, match="^2 of 2 runs are not in"):
        run_arms({"a": [{"k": 1}, {"k": 2}]}, store=tmp_path, run_fn=run_fn)
    assert calls == []
    monkeypatch.delenv("SGDTEMP_STORE_ONLY")
    run_arms({"a": [{"k": 1}, {"k": 2}]}, store=tmp_path, run_fn=run_fn)
    monkeypatch.setenv("SGDTEMP_STORE_ONLY", "1")
    out = run_arms({"a": [{"k": 1}, {"k": 2}]}, store=tmp_path, run_fn=run_fn)
    assert len(calls) == 2 and len(out["a"]) == 2 and out.n_computed == 0
