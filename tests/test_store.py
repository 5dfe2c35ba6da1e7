"""The results store: keys, round trips, atomic writes, unreadable files."""

import json
import os

import numpy as np
import pytest

from sgdtemp import files, store
from sgdtemp.store import ResultsStore, StoreError, config_key

CONFIG = {"dataset": "cifar10", "model": "small_cnn", "lr": 0.064, "batch_size": 64,
          "epochs": 3, "seed": 1, "momentum": 0.0, "n_train": 1000, "curvature": True,
          "data_dir": "/data/here"}
RECORD = {"curves": {"epoch": [1, 2, 3], "test_loss": [2.1, 1.9, 1.8]},
          "final": {"test_loss": 1.8, "test_acc": 0.35}, "diverged": False}
PROV = {"git_commit": "abc", "git_dirty": False, "device": "cpu", "wall_time_s": 1.5,
        "seed": 1}


def test_key_is_sha256_of_sorted_compact_json_without_data_dir():
    import hashlib

    expected_text = json.dumps({k: v for k, v in CONFIG.items() if k != "data_dir"},
                               sort_keys=True, separators=(",", ":"))
    assert config_key(CONFIG) == hashlib.sha256(expected_text.encode()).hexdigest()


def test_key_is_stable_under_order_numpy_types_and_data_dir():
    shuffled = dict(reversed(list(CONFIG.items())))
    assert config_key(shuffled) == config_key(CONFIG)
    as_numpy = {**CONFIG, "lr": np.float64(0.064), "batch_size": np.int64(64)}
    assert config_key(as_numpy) == config_key(CONFIG)
    elsewhere = {**CONFIG, "data_dir": "/somewhere/else"}
    assert config_key(elsewhere) == config_key(CONFIG)
    without = {k: v for k, v in CONFIG.items() if k != "data_dir"}
    assert config_key(without) == config_key(CONFIG)


@pytest.mark.parametrize("name,value", [("lr", 0.0640001), ("batch_size", 65), ("seed", 2),
                                        ("epochs", 4), ("momentum", 0.9), ("n_train", None),
                                        ("curvature", False), ("model", "mlp")])
def test_key_changes_with_every_entry_that_changes_the_result(name, value):
    assert config_key({**CONFIG, name: value}) != config_key(CONFIG)


def test_key_changes_when_an_entry_is_added():
    assert config_key({**CONFIG, "label_noise": 0.0}) != config_key(CONFIG)


def test_round_trip(tmp_path):
    s = ResultsStore(tmp_path / "res")
    assert s.get(CONFIG) is None and not s.has(CONFIG) and len(s) == 0
    path = s.put(CONFIG, RECORD, PROV)
    assert path == tmp_path / "res" / f"{config_key(CONFIG)}.json"
    assert s.get(CONFIG) == RECORD
    assert s.has(CONFIG) and CONFIG in s
    entry = s.entry(CONFIG)
    assert entry["key"] == config_key(CONFIG)
    assert entry["provenance"] == PROV
    assert "data_dir" not in entry["config"]
    assert [e["key"] for e in s] == [config_key(CONFIG)]
    # the same run read from another data folder finds the stored result
    assert s.get({**CONFIG, "data_dir": "/other"}) == RECORD


def test_put_replaces_and_missing_keeps_order_without_duplicates(tmp_path):
    s = ResultsStore(tmp_path)
    other = {**CONFIG, "seed": 7}
    third = {**CONFIG, "seed": 8}
    s.put(CONFIG, RECORD, PROV)
    s.put(CONFIG, {**RECORD, "diverged": True}, PROV)
    assert s.get(CONFIG)["diverged"] is True
    assert len(s) == 1
    assert s.missing([third, CONFIG, other, third]) == [third, other]


def test_numpy_values_in_records_are_stored_as_plain_json(tmp_path):
    s = ResultsStore(tmp_path)
    s.put(CONFIG, {"final": {"test_acc": np.float32(0.5)}, "curve": np.arange(3)}, PROV)
    assert s.get(CONFIG) == {"final": {"test_acc": 0.5}, "curve": [0, 1, 2]}


def test_no_temporary_files_are_left(tmp_path):
    s = ResultsStore(tmp_path)
    for seed in range(5):
        s.put({**CONFIG, "seed": seed}, RECORD, PROV)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{k}.json" for k in s.keys())


def test_crash_mid_write_leaves_no_file(tmp_path, monkeypatch):
    s = ResultsStore(tmp_path)

    def crash(src, dst):
        raise KeyboardInterrupt  # killed between writing the temp file and the rename

    monkeypatch.setattr(files.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        s.put(CONFIG, RECORD, PROV)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []
    assert s.get(CONFIG) is None and s.missing([CONFIG]) == [CONFIG]


def test_crash_mid_write_keeps_the_previous_result(tmp_path, monkeypatch):
    s = ResultsStore(tmp_path)
    s.put(CONFIG, RECORD, PROV)

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "fsync", crash)
    with pytest.raises(OSError):
        s.put(CONFIG, {**RECORD, "diverged": True}, PROV)
    monkeypatch.undo()
    assert s.get(CONFIG) == RECORD
    assert os.listdir(tmp_path) == [f"{config_key(CONFIG)}.json"]


@pytest.mark.parametrize("content", ["", '{"key": "x", "conf', "[1, 2]", '{"record": {}}'])
def test_unreadable_file_raises_clearly_is_skipped_and_counts_as_missing(tmp_path, content):
    s = ResultsStore(tmp_path)
    s.put({**CONFIG, "seed": 5}, RECORD, PROV)
    bad = s.path(CONFIG)
    bad.write_text(content)
    with pytest.raises(StoreError, match=str(bad.name)):
        s.get(CONFIG)
    with pytest.warns(UserWarning, match="cannot be read|lacks"):
        entries = list(s)
    assert [e["config"]["seed"] for e in entries] == [5]
    with pytest.warns(UserWarning):
        assert s.missing([CONFIG]) == [CONFIG]


def test_file_whose_config_does_not_match_its_name_is_rejected(tmp_path):
    s = ResultsStore(tmp_path)
    s.put(CONFIG, RECORD, PROV)
    path = s.path(CONFIG)
    entry = json.loads(path.read_text())
    entry["config"]["lr"] = 0.5  # edited by hand
    path.write_text(json.dumps(entry))
    with pytest.raises(StoreError, match="does not match"):
        s.get(CONFIG)


def test_non_finite_config_values_are_refused():
    with pytest.raises(ValueError):
        config_key({**CONFIG, "lr": float("nan")})


def test_provenance_has_the_promised_fields():
    p = store.provenance(wall_time_s=2.0, seed=3, device="cpu")
    for field in ("git_commit", "git_dirty", "device", "python", "torch", "numpy", "sgdtemp",
                  "hostname", "wall_time_s", "seed", "created"):
        assert field in p
    assert p["wall_time_s"] == 2.0 and p["seed"] == 3 and p["device"] == "cpu"


# ---------------------------------------------------------------- found by mutation testing
def test_key_of_non_ascii_values_hashes_their_utf8_text():
    import hashlib

    cfg = {**CONFIG, "note": "température η"}
    text = json.dumps({k: v for k, v in cfg.items() if k != "data_dir"}, sort_keys=True,
                      separators=(",", ":"), ensure_ascii=False)
    assert config_key(cfg) == hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_non_finite_value_is_named_in_the_error():
    with pytest.raises(ValueError, match="inf is not finite"):
        config_key({**CONFIG, "lr": float("inf")})


def test_a_file_without_provenance_is_still_readable(tmp_path):
    s = ResultsStore(tmp_path)
    path = s.put(CONFIG, RECORD, PROV)
    entry = json.loads(path.read_text())
    del entry["provenance"]
    path.write_text(json.dumps(entry))
    assert s.get(CONFIG) == RECORD


def test_missing_skips_duplicates_anywhere_and_hidden_files_are_not_keys(tmp_path):
    s = ResultsStore(tmp_path)
    a, b, c = ({**CONFIG, "seed": k} for k in (11, 12, 13))
    assert s.missing([a, a, b, a, c]) == [a, b, c]
    s.put(a, RECORD, PROV)
    (tmp_path / ".half-written.json").write_text("{")
    assert s.keys() == [config_key(a)] and len(s) == 1
    assert repr(s) == f"ResultsStore({str(tmp_path)!r})"


def test_warnings_name_the_unreadable_file(tmp_path):
    s = ResultsStore(tmp_path)
    s.put(CONFIG, RECORD, PROV)
    s.path(CONFIG).write_text("{")
    with pytest.warns(UserWarning, match=s.path(CONFIG).name):
        assert not s.has(CONFIG)
