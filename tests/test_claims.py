import json

import pytest

import nbformat
import numpy as np

from sgdtemp.claims import ClaimsTable, claims_from_notebook, dumps


def test_compare_uses_the_tolerance():
    t = ClaimsTable("demo")
    assert t.compare("a", "close", 1.0, 1.05, 0.1).holds
    assert not t.compare("b", "far", 1.0, 1.2, 0.1).holds
    assert not t.all_hold


def test_records_are_json_and_ids_unique():
    t = ClaimsTable("demo")
    t.check("order", "increasing", "increasing", np.array([1.0, 2.0]), "-", np.bool_(True))
    t.compare("x", "inf ok", 0.0, np.float64(0.0), np.inf)
    rec = json.loads(dumps(t.records()))
    assert rec[0]["measured"] == [1.0, 2.0] and rec[0]["holds"] is True
    assert rec[1]["tolerance"] == "inf"
    try:
        t.compare("x", "dup", 0, 0, 1)
    except ValueError:
        pass
    else:
        raise AssertionError("duplicate claim id accepted")


def test_claims_travel_in_output_metadata():
    t = ClaimsTable("demo")
    t.compare("a", "s", 1, 1, 0)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "x"},
                                           metadata={"sgdtemp_claims": {"chapter": "demo",
                                                                        "claims": t.records()}})]
    nb.cells.append(cell)
    assert claims_from_notebook(nb) == t.records()


def test_kinds_and_expected_rates_travel_with_the_claim():
    t = ClaimsTable("demo")
    a = t.compare_se("s", "stat", 1.0, 1.25, se=0.1)  # 2.5 s.e.: holds at z = 3
    b = t.compare_se("s2", "stat", 1.0, 1.35, se=0.1)
    c = t.check_identity("i", "enumeration", 0.0, 1e-15, 1e-12)
    assert a.holds and not b.holds and c.holds
    assert a.tolerance == 3 * 0.1 and abs(a.expected_rate - 0.9973) < 1e-4
    assert c.kind == "identity" and c.expected_rate == 1.0
    rec = json.loads(dumps(t.records()))
    assert set(rec[0]) >= {"id", "statement", "predicted", "measured", "tolerance", "holds",
                           "kind", "expected_rate"}
    assert "implementation check" in t.to_html() and "implementation check" in t.to_text()
    for bad in (dict(kind="proof"), dict(expected_rate=1.5)):
        try:
            t.check("x" + str(bad), "s", 0, 0, 0, True, **bad)
        except ValueError:
            pass
        else:
            raise AssertionError(f"accepted {bad}")
    try:
        t.compare_se("neg", "s", 0, 0, se=1, systematic=-1)
    except ValueError:
        pass
    else:
        raise AssertionError("negative systematic term accepted")


def test_claims_html_reads_verdict_first_with_numbered_equation_links():
    from sgdtemp.claims import claims_html

    records = [dict(id="a_b", statement="S from {eq}`eq-x` <b>", predicted=1.0, measured=1.5,
                    tolerance=0.1, holds=False)]
    html = claims_html(records, chapter="ch")
    row = html[html.index("<tbody>"):]
    # The verdict is the first cell of the row, the id sits in small type under the statement.
    assert row.index("class='verdict fails'") < row.index("class='statement'")
    assert "<div class='claim-id'>a_b</div>" in row and "id='claim-ch-a_b'" in row
    # The statement is escaped; its equation citation is a link the book build numbers.
    assert "&lt;b&gt;" in row and "data-label='eq-x'" in row and "{eq}" not in row
    assert "1 claims: 0 hold, 1 fail" in html


def test_a_claim_shown_alone_is_a_verdict_line_not_a_repr():
    from sgdtemp.claims import ClaimsTable

    c = ClaimsTable("x").compare("k", "two equals two", 2, 2, 0.1)
    assert "✓ holds" in c._repr_html_() and "Claim(" not in c._repr_html_()


def test_offline_mathjax_bundle_is_installed():
    """requirements.txt pins the package whose copy of MathJax the book serves."""
    from sgdtemp.book_html import mathjax_bundle

    assert (mathjax_bundle() / "tex-mml-chtml.js").is_file()


def test_three_verdicts_travel_into_records_tables_and_the_strict_rule():
    from sgdtemp import stats
    from sgdtemp.claims import verdict_counts, verdict_summary

    t = ClaimsTable("ch")
    t.agree("inv", "invariant at fixed T", stats.equivalence(0.01, 0.01, margin=0.1, dof=20))
    t.agree("weak", "invariant, weakly measured", stats.equivalence(0.0, 0.2, margin=0.1, dof=20))
    t.direction("hot", "hotter is better", stats.directional(-1.0, 0.1, effect=0.5))
    t.check("count", "every cell interior", "9 of 9", "4 of 9", "all", verdict="unresolved")
    recs = {r["id"]: r for r in t.records()}
    assert [recs[k]["verdict"] for k in ("inv", "weak", "hot", "count")] == \
        ["holds", "unresolved", "fails", "unresolved"]
    assert recs["inv"]["holds"] and not recs["weak"]["holds"]
    assert recs["inv"]["margin"] == 0.1 and recs["weak"]["detectable"] > 0.1
    assert recs["hot"]["predicted"] == 0.5 and recs["hot"]["measured"] == -1.0
    assert verdict_counts(t.records()) == {"holds": 1, "fails": 1, "unresolved": 2}
    assert verdict_summary(t.records()) == "4 claims: 1 hold, 1 fail, 2 unresolved"
    html = t.to_html()
    assert html.count("class='verdict unresolved'") == 2 and "✓ ✗ ?" in html
    assert not t.none_fail and "[??] weak" in t.to_text()
    with pytest.raises(ValueError, match="exactly one of holds and verdict"):
        t.check("x", "s", 1, 1, 0)
    with pytest.raises(ValueError, match="^verdict must be one of"):
        t.check("y", "s", 1, 1, 0, verdict="maybe")
    # an agreement decision cannot be published as a directional claim
    with pytest.raises(ValueError, match="direction takes a directional decision"):
        t.direction("z", "s", stats.equivalence(0.0, 0.01, margin=0.1))
