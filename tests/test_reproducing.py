"""The appendix ``reproducing``: its API reference covers every module, grouped as its
contents table says, and its tables are built from the library."""

import re
from pathlib import Path

from sgdtemp.presets import reproducing as rp

PAGE = (Path(__file__).resolve().parents[1] / "book" / "reproducing.md").read_text()


def test_every_module_is_in_one_group():
    grouped = [m for mods in rp.API_GROUPS.values() for m in mods]
    assert len(grouped) == len(set(grouped))
    assert sorted(grouped) == rp.library_modules()


def test_the_page_documents_the_groups_in_order():
    documented = re.findall(r"^\s*\.\. automodule:: sgdtemp\.([\w.]+)", PAGE, re.M)
    assert documented == [m for mods in rp.API_GROUPS.values() for m in mods]
    headings = re.findall(r"^### (.+)$", PAGE[PAGE.index("(api-reference)="):], re.M)
    assert headings == list(rp.API_GROUPS)


def test_the_statistical_method_has_its_labels():
    # chapters cite the method as {ref}`statistical-method` (and the older `tolerance-rule`)
    i = PAGE.index("(statistical-method)=")
    assert PAGE.index("(tolerance-rule)=") > i and PAGE.index("## How a claim is judged") > i


def test_tables_read_from_the_library():
    html = rp.api_contents_html()
    assert "href='#module-sgdtemp.stats.decisions'" in html
    assert rp.first_line("stats.decisions").startswith("Verdicts: a claim holds")
    presets = rp.presets_html(["intro", "claims_report"])
    assert "<b>intro</b>: 4 parameters" in presets and "1 parameter<" in presets
    assert "[4, 8, 16]" in presets  # lists as values, not reprs with quotes
    power = rp.power_table_html([8, None])
    assert "<td>4.28</td><td>5.36</td>" in power and "<td>3.00</td><td>3.84</td>" in power


def test_machine_names_the_commit_python_and_torch():
    from sgdtemp.presets.reproducing import machine

    table = machine()
    import platform

    import torch

    assert platform.python_version() in table and torch.__version__ in table
