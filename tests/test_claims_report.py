"""The claims report: resumable runs, rates against expected rates, flags."""

import json

import pytest

from sgdtemp import claims_report as cr


def _store(tmp_path, chapter, seed, claims):
    d = tmp_path / chapter
    d.mkdir(parents=True, exist_ok=True)
    rec = {"chapter": chapter, "seed": seed, "fidelity": "default", "git_commit": "abc",
           "git_dirty": False, "date": "2026-01-01T00:00:00+00:00", "wall_time_s": 1.0,
           "claims": claims}
    (d / (f"seed{seed}.json" if seed is not None else "reference.json")).write_text(json.dumps(rec))


def _claim(cid, holds, rate=0.9973, kind="statistical"):
    return {"id": cid, "statement": "s", "predicted": 0, "measured": 0, "tolerance": 1,
            "holds": holds, "kind": kind, "expected_rate": rate}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(cr, "results_dir", lambda: tmp_path)
    return tmp_path


def test_only_missing_pairs_are_run(store):
    _store(store, "intro", 10, [_claim("a", True)])
    todo = cr.missing([10, 11], chapters=["intro", "cifar10_temperature"])
    assert todo == [("intro", 11), ("cifar10_temperature", None)]
    _store(store, "cifar10_temperature", None, [_claim("n", False, None)])
    assert cr.missing([10, 11], chapters=["intro", "cifar10_temperature"]) == [("intro", 11)]


def test_rates_and_flags(store):
    for s in range(10, 15):
        _store(store, "intro", s, [_claim("ok", True), _claim("bad", s == 10),
                                   _claim("norate", s < 12, None),
                                   _claim("exact", True, 1.0, "identity")])
    rates = {r.id: r for r in cr.claim_rates("intro")}
    assert [r.id for r in cr.claim_rates("intro")] == ["ok", "bad", "norate", "exact"]
    assert rates["ok"].n == 5 and rates["ok"].rate == 1.0 and not rates["ok"].flagged()
    assert rates["bad"].n_hold == 1 and rates["bad"].failed_seeds == [11, 12, 13, 14]
    assert rates["bad"].flagged() and rates["bad"].p_value < 1e-8
    assert rates["norate"].p_value is None and not rates["norate"].flagged()
    assert rates["exact"].kind == "identity" and rates["exact"].expected_rate == 1.0


def test_one_failure_in_five_at_three_se_is_not_flagged_at_the_default(store):
    for s in range(5):
        _store(store, "intro", s, [_claim("c", s != 0)])
    r = cr.claim_rates("intro")[0]
    assert r.p_value == pytest.approx(1 - 0.9973**5, rel=0.01)
    assert r.flagged(0.05) and not r.flagged(0.01) and not r.flagged()


def test_network_chapters_come_from_the_book_order():
    net = cr.network_chapters()
    assert "cifar10_temperature" in net
    assert not set(net) & set(cr.TOY_CHAPTERS) and not set(net) & set(cr.APPENDIX_CHAPTERS)


def test_unknown_chapter_is_one_sentence(store):
    from sgdtemp.params import ParameterError

    with pytest.raises(ParameterError, match="chapters must be among"):
        cr.compute([1], chapters=["no_such_chapter"])
    assert not any(store.iterdir())


def test_net_claims_of_toy_chapters_are_verdicts_not_rates(store):
    # The net_ claims read the same committed runs at every seed: they are listed once, from
    # the highest seed's run, and left out of the rates over seeds.
    for s in (10, 11, 12):
        _store(store, "noise_enhancement", s, [_claim("toy", True), _claim("net_x", s != 12)])
    assert [r.id for r in cr.claim_rates("noise_enhancement")] == ["toy"]
    assert [(c["id"], c["holds"]) for c in cr.network_verdicts("noise_enhancement")] == [("net_x", False)]
    _store(store, "cifar10_temperature", None, [_claim("a", True), _claim("b", False)])
    assert [c["id"] for c in cr.network_verdicts("cifar10_temperature")] == ["a", "b"]
    assert cr.network_verdicts("intro") is None


def test_verdict_counts_and_what_would_resolve_an_unresolved_claim(store, monkeypatch):
    _store(store, "noise_enhancement", 10, [_claim("toy", True), _claim("net_x", False)])
    _store(store, "noise_enhancement", 11, [_claim("toy", False), _claim("net_x", False)])
    unresolved = dict(_claim("c", False), verdict="unresolved", detectable=0.3, margin=0.1)
    _store(store, "cifar10_temperature", None, [_claim("a", True), _claim("b", False), unresolved])
    counts = cr.verdict_counts_by_chapter(["noise_enhancement", "cifar10_temperature", "intro"])
    # the toy claim over two seeds (claim-runs), the net_ claim once (the highest seed)
    assert counts == {"noise_enhancement": {"holds": 1, "fails": 2, "unresolved": 0},
                      "cifar10_temperature": {"holds": 1, "fails": 1, "unresolved": 1}}
    monkeypatch.setattr(cr, "store_cpu_hours", lambda ch: 2.0)
    [r] = cr.resolutions(["cifar10_temperature"])
    # detectable 0.3 against a margin 0.1: (0.3/0.1)² = 9 times the seeds, 8 × 2 CPU-hours more
    assert r.id == "c" and r.factor == pytest.approx(9.0) and r.cpu_hours == pytest.approx(16.0)
