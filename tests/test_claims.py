import json

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
