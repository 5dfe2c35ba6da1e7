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


def test_monte_carlo_checks_are_read_as_what_they_are():
    # records before the third kind: a Monte Carlo check was an "identity" below rate 1
    assert cr.kind_of({"kind": "identity", "expected_rate": 0.9973}) == "monte_carlo_check"
    assert cr.kind_of({"kind": "identity", "expected_rate": 1.0}) == "identity"
    assert cr.kind_of({"kind": "monte_carlo_check", "expected_rate": 0.9973}) == "monte_carlo_check"
    assert cr.kind_of({"id": "old"}) == "statistical"


def test_poisson_binomial_tail_is_exact():
    from itertools import product

    from scipy import stats

    assert cr.poisson_binomial_sf(3, [0.1] * 8) == pytest.approx(stats.binom.sf(2, 8, 0.1))
    probs = [0.01, 0.2, 0.5, 0.003]
    brute = sum(
        __import__("math").prod(p if x else 1 - p for p, x in zip(probs, xs))
        for xs in product([0, 1], repeat=4) if sum(xs) >= 2)
    assert cr.poisson_binomial_sf(2, probs) == pytest.approx(brute)
    assert cr.poisson_binomial_sf(0, probs) == 1.0 and cr.poisson_binomial_sf(5, probs) == 0.0


def test_observed_failures_against_expected(store):
    # 20 claims at 99.73% over 5 seeds: 0.27 failures expected; one claim fails 3 times
    for s in range(10, 15):
        _store(store, "intro", s, [_claim(f"c{i}", not (i == 0 and s < 13)) for i in range(20)]
               + [_claim("norate", False, None)])
    rates = cr.claim_rates("intro")
    f = cr.failure_count(rates)
    assert f.n_runs == 100 and f.expected == pytest.approx(100 * (1 - 0.9973))
    assert f.observed == 3 and f.p_value < 0.01 and f.excess()
    rest = cr.failure_count(rates, exclude=[("intro", "c0")])
    assert rest.observed == 0 and rest.p_value == 1.0 and not rest.excess()
    assert rates[0].n_fail == 3 and rates[0].verdicts[0] == (10, "fails")


def test_unresolved_runs_are_not_failures(store):
    unresolved = dict(_claim("u", False), verdict="unresolved")
    for s in (1, 2):
        _store(store, "intro", s, [unresolved])
    [r] = cr.claim_rates("intro")
    assert r.n_hold == 0 and r.n_fail == 0 and r.p_value == pytest.approx(1.0)
    assert [v for _, v in r.verdicts] == ["unresolved", "unresolved"]


def test_numbers_for_a_reader():
    assert cr.percent(0.9973002) == "99.73%" and cr.percent(0.999) == "99.90%"
    assert cr.percent(1.0) == "100%" and cr.percent(None) == "–"
    assert cr.percent(0.99999979) == "99.999979%"
    assert cr.scientific(0.0134) == "0.013" and cr.scientific(4.2e-34) == "4.2 × 10⁻³⁴"
    assert cr.scientific(None) == "–" and cr.scientific(float("nan")) == "–"


def test_report_tables_read_verdict_first_and_print_no_repr(store):
    for s in (10, 11):
        _store(store, "intro", s, [_claim("ok", True),
                                   _claim("mc", s == 10, 0.9973, "identity")])
    html = cr.toy_table_html("intro", cr.claim_rates("intro"))
    assert html.index(">by seed<") < html.index(">claim<")
    assert "Monte Carlo check" in html and "implementation check" not in html
    assert "Flagged</b>: failed at seed 11" in html  # 1 of 2 at 99.73%: P = 0.0054
    measured = {"F": 0.72, "p": 0.891}
    net = [dict(_claim("n1", True), measured=measured),
           dict(_claim("n2", False), verdict="unresolved", detectable=0.3, margin=0.1)]
    html = cr.network_table_html("cifar10_temperature", net)
    assert "{'" not in html and "F: 0.72, p: 0.891" in html
    assert "unresolved" in html and "margin 0.1" in html
    assert "1 hold, 1 unresolved" in html


def test_resolutions_table_and_its_empty_case(store, monkeypatch):
    assert "None: every network claim" in cr.resolutions_html([])
    unresolved = dict(_claim("c", False), verdict="unresolved", detectable=0.2, margin=0.1)
    _store(store, "cifar10_temperature", None, [unresolved])
    monkeypatch.setattr(cr, "store_cpu_hours", lambda ch: 3.0)
    html = cr.resolutions_html(cr.resolutions(["cifar10_temperature"]))
    assert "4.0×" in html and "9.0" in html  # (0.2/0.1)² seeds, 3 × 3 CPU-hours more


def test_report_html_pieces_name_chapters_counts_flags_and_provenance(store):
    _store(store, "power_law", 10, [_claim("escape_slope_x", False), _claim("ok", True)])
    _store(store, "power_law", 11, [_claim("escape_slope_x", False), _claim("ok", True)])
    _store(store, "cifar10_temperature", None, [_claim("a", True)])
    counts = cr.counts_table_html(["power_law", "cifar10_temperature"])
    assert "power_law" in counts and "cifar10_temperature" in counts and "<table" in counts
    rates = cr.claim_rates("power_law")
    flagged = cr.flagged_html(rates)
    # held 0 of 2 at 99.73%: flagged, with the chapter's stated reason when it has one
    assert "escape_slope_x" in flagged
    import html

    reason = cr.failure_reason("power_law", "escape_slope_x")
    assert reason is not None and reason.split(";")[-1].strip() in html.unescape(flagged)
    assert cr.failure_reason("power_law", "no_such_claim") is None
    prov = cr.provenance_html(["power_law", "cifar10_temperature", "two_minima"])
    assert "10, 11" in prov and "reference" in prov and "none stored" in prov
