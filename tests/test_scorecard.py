"""The scorecard (book/intro.md): verdicts read from the chapters' stored claims by the
stated rule, never typed; every paper claim points at claims that exist."""

import json
import re

import pytest

from sgdtemp import claims_report as cr
from sgdtemp import scorecard as sc
from sgdtemp.chapters import available_chapters, chapter_path


def test_combination_rule():
    assert sc.combine(["holds", "holds"]) == "holds"
    assert sc.combine(["holds", "fails", "unresolved"]) == "fails"
    assert sc.combine(["holds", "unresolved"]) == "unresolved"
    assert sc.combine([]) == "unresolved"  # nothing recorded: no verdict


def test_every_paper_claim_names_a_paper_a_chapter_and_a_section_that_exist():
    assert {pc.paper for pc in sc.PAPER_CLAIMS} == set(sc.PAPERS)  # all six papers
    for pc in sc.PAPER_CLAIMS:
        assert pc.chapter in available_chapters(), pc
        if pc.section:
            assert f"({pc.section})=" in chapter_path(pc.chapter).read_text(), pc
        assert "?" not in sc.scale(pc), f"{pc.claim}: {sc.scale(pc)}"  # every name resolved


def test_every_paper_claim_matches_stored_claims():
    # A renamed claim would silently leave a paper claim "unresolved (no claim recorded)".
    for pc in sc.PAPER_CLAIMS:
        ids = [c["id"] for c in sc.chapter_claims(pc.chapter)]
        for p in pc.patterns:
            if p.endswith("_invariant*"):  # alternative name of the same test
                continue
            assert sc.matching([{"id": i} for i in ids], [p]), \
                f"{pc.chapter}: no stored claim matches {p!r} ({pc.claim})"


def _store(d, chapter, seed, claims):
    (d / chapter).mkdir(parents=True, exist_ok=True)
    name = "reference.json" if seed is None else f"seed{seed}.json"
    (d / chapter / name).write_text(json.dumps({"seed": seed, "claims": claims}))


def _c(cid, verdict, rate=None):
    return {"id": cid, "statement": "s", "predicted": 0, "measured": 0, "tolerance": 1,
            "holds": verdict == "holds", "verdict": verdict, "expected_rate": rate}


def test_verdicts_come_from_the_stored_claims(tmp_path, monkeypatch):
    monkeypatch.setattr(cr, "results_dir", lambda: tmp_path)
    _store(tmp_path, "cifar10_temperature", None,
           [_c("invariance_at_fixed_T", "unresolved"), _c("test_loss_falls_with_T", "fails")])
    # a toy claim with a rate: one chance failure in five is read as holding, a flagged
    # claim (two in five at 99.73%) fails
    for s in range(10, 15):
        _store(tmp_path, "power_law", s,
               [_c("sigma_a", "fails" if s == 14 else "holds", 0.9973),
                _c("phi_b", "holds", 0.9973),
                _c("escape_x", "fails" if s >= 13 else "holds", 0.9973)])
    rows = {r.claim.claim: r for r in sc.scorecard()}
    inv = next(r for r in rows.values() if r.claim.patterns == ("invariance*",))
    assert inv.verdict == "unresolved" and inv.ids == (("invariance_at_fixed_T", "unresolved"),)
    loss = next(r for r in rows.values() if "test loss falls" in r.claim.claim)
    assert loss.verdict == "fails"
    density = next(r for r in rows.values() if r.claim.patterns == ("sigma_*", "phi_*"))
    assert density.verdict == "holds"
    escape = next(r for r in rows.values() if r.claim.patterns == ("escape_*",))
    assert escape.verdict == "fails"
    nothing = next(r for r in rows.values() if r.claim.chapter == "three_factors")
    assert nothing.verdict == "unresolved" and nothing.ids == ()
    html = sc.scorecard_html(list(rows.values()))
    assert "no claim recorded yet" in html and "their setting" in html
    assert sum(sc.counts(list(rows.values())).values()) == len(sc.PAPER_CLAIMS)


def test_no_verdict_is_typed_in_the_mapping():
    src = (sc.__file__ and open(sc.__file__).read())
    mapping = src[src.index("PAPER_CLAIMS = ("):src.index("def combine(")]
    assert not re.search(r"\b(holds|fails|unresolved)\b", mapping)
