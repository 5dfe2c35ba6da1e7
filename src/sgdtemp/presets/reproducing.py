"""The appendix ``reproducing``: no knobs beyond the shared ``fidelity`` and ``seed``, and the
tables it shows (fidelity presets, the build machine, the API's contents), read from the
library so that they cannot drift from the code."""

from __future__ import annotations

import html
import importlib
import pkgutil

from sgdtemp.params import FIDELITIES, ParameterSet

PARAMETERS = ParameterSet(chapter="reproducing", params=[])

#: The API reference's groups, in the page's order; every module of the library is in one
#: (tests/test_reproducing.py checks this against the package and against the page).
API_GROUPS = {
    "Chapters, parameters and claims": ("params", "chapters", "claims", "claims_report",
                                        "scorecard", "records", "files", "cli"),
    "Statistics": ("stats", "stats.basic", "stats.decisions", "stats.contrasts",
                   "stats.collapse", "stats.peaks"),
    "Toy models and their theory": ("landscapes", "regression", "dynamics", "fokker_planck",
                                    "two_minima", "shift", "escape", "power_law",
                                    "isotropic_minima", "modified_loss", "noise_enhancement",
                                    "evidence"),
    "Networks and their runs": ("data", "models", "training_config", "train", "curvature",
                                "batchnorm_temperature", "store", "sweep", "verify"),
    "The book's pages": ("plotting", "book_html"),
}


def library_modules() -> list[str]:
    """Every module of the library (``sgdtemp.X``, ``sgdtemp.stats.X``) but the package
    entry point and the chapters' presets, which the appendix shows as tables."""
    import sgdtemp

    out = []
    for info in pkgutil.walk_packages(sgdtemp.__path__, "sgdtemp."):
        name = info.name
        if name == "sgdtemp.__main__" or name.startswith("sgdtemp.presets"):
            continue
        out.append(name[len("sgdtemp."):])
    return sorted(out)


def first_line(module: str) -> str:
    """The first sentence of ``sgdtemp.<module>``'s docstring (up to its first full stop,
    within its first paragraph), reST literals as text."""
    doc = (importlib.import_module(f"sgdtemp.{module}").__doc__ or "").strip()
    para = " ".join(doc.split("\n\n")[0].split())
    end = para.find(". ")
    return (para if end < 0 else para[:end + 1]).replace("``", "")


def api_contents_html() -> str:
    """The API reference's contents: per group, each module with the first line of its
    docstring, linked to its reference on the page (``#module-sgdtemp.X``)."""
    rows = []
    for group, modules in API_GROUPS.items():
        rows.append(f"<tr class='group'><td colspan='2'>{html.escape(group)}</td></tr>")
        for m in modules:
            rows.append(f"<tr><td><a class='reference internal' href='#module-sgdtemp.{m}'>"
                        f"<code>sgdtemp.{m}</code></a></td>"
                        f"<td>{html.escape(first_line(m))}</td></tr>")
    return ("<table class='sgdtemp-table sgdtemp-api'><thead><tr><th>module</th>"
            f"<th>what it holds</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _value(v) -> str:
    if isinstance(v, (list, tuple)):  # wrap between items, never inside a number
        return ", ".join(_value(x) for x in v).join("[]" if isinstance(v, list) else "()")
    return html.escape(repr(v))


def presets_html(chapters: list[str]) -> str:
    """One table per chapter, folded under the chapter's name: each parameter (its meaning
    beneath its name) with the value each fidelity uses; a value that does not depend on the
    fidelity is written once."""
    from sgdtemp.chapters import parameter_set

    tables = []
    for chapter in chapters:
        rows = []
        for p in parameter_set(chapter).params:
            name = (f"<td><code>{html.escape(p.name)}</code>"
                    f"<div class='meaning'>{html.escape(p.doc)}</div></td>")
            if isinstance(p.default, dict) and set(p.default) == set(FIDELITIES):
                vals = "".join(f"<td class='value'>{_value(p.default[f])}</td>" for f in FIDELITIES)
            else:
                vals = (f"<td colspan='3' class='value same'>{_value(p.default)} at every "
                        "fidelity</td>")
            rows.append(f"<tr>{name}{vals}</tr>")
        if not rows:
            continue
        head = "<tr><th>parameter</th>" + "".join(f"<th>{f}</th>" for f in FIDELITIES) + "</tr>"
        tables.append(f"<details class='sgdtemp-presets'><summary><b>{html.escape(chapter)}"
                      f"</b>: {len(rows)} parameter{'' if len(rows) == 1 else 's'}</summary>"
                      f"<table class='sgdtemp-table sgdtemp-presets'>"
                      f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table></details>")
    return "".join(tables)


def power_table_html(dofs) -> str:
    """The critical multiple t of a standard error (:func:`sgdtemp.stats.decisions.t_multiplier`)
    and the 80%-power detectable difference in standard errors
    (:func:`sgdtemp.stats.decisions.detectable_difference`) at each number of degrees of
    freedom (None: a known standard error)."""
    from sgdtemp.stats import detectable_difference, t_multiplier

    rows = "".join(f"<tr><td>{'known' if d is None else d}</td><td>{t_multiplier(d):.2f}</td>"
                   f"<td>{detectable_difference(1.0, d):.2f}</td></tr>" for d in dofs)
    return ("<table class='sgdtemp-table'><thead><tr><th>degrees of freedom</th>"
            "<th>t (multiple of se)</th><th>δ₈₀ (multiple of se)</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>")


def machine() -> str:
    """The machine and software this copy of the book was built with, as a table."""
    import os
    import platform
    import subprocess

    import numpy as np
    import torch

    from sgdtemp.chapters import repo_root

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo_root(),
                                capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    info = {"git commit": commit or "unknown", "python": platform.python_version(),
            "platform": platform.platform(), "processor": platform.processor() or "unknown",
            "cpu cores": os.cpu_count(), "numpy": np.__version__, "torch": torch.__version__,
            "cuda available": "yes" if torch.cuda.is_available() else "no"}
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>"
                   for k, v in info.items())
    return f"<table class='sgdtemp-table sgdtemp-machine'><tbody>{rows}</tbody></table>"
