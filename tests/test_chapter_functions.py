"""Library functions the chapters call that had no test of their own.

Found by listing every ``sgdtemp`` name a chapter (``book/*.md``) imports or calls and
looking each up in ``tests/`` (the listing is in ``tests/README.md``).
"""

from __future__ import annotations

import itertools

import matplotlib as mpl
import numpy as np
import pytest
from scipy.integrate import quad

from sgdtemp import chapters, plotting
from sgdtemp import modified_loss as ml
from sgdtemp import power_law as pl
from sgdtemp.params import ParameterError, ParameterSet


# ---------------------------------------------------------------- modified_loss
@pytest.mark.parametrize("N,B", [(6, 1), (6, 2), (6, 3), (7, 6), (5, 5)])
def test_finite_population_factor_is_the_without_replacement_variance(N, B):
    """Enumerate every B-subset of N numbers: the variance of the subset mean is exactly
    κ_B σ²/B, σ² the population variance (1/N), κ_B = (N − B)/(N − 1)."""
    x = np.array([0.3, -1.2, 2.5, 0.7, -0.4, 1.9, 3.3])[:N]
    means = np.array([np.mean(c) for c in itertools.combinations(x, B)])
    var_of_mean = np.mean((means - x.mean()) ** 2)
    assert ml.finite_population_factor(N, B) * x.var() / B == pytest.approx(var_of_mean, rel=1e-12)
    assert ml.finite_population_factor(N, 1) == 1.0 and ml.finite_population_factor(N, N) == 0.0


# ---------------------------------------------------------------- power_law (1-D SGD)
def test_sgd_stationary_variance_1d_is_the_fixed_point_of_the_exact_moment_map():
    """ℓ_i = ½a_i(θ − c_i)²: per-example gradients a_i u + b_i in u = θ − θ*, Σ b_i = 0.
    Minibatches of B drawn with replacement are enumerated (N^B of them), which gives the
    exact map (E u, E u²) → (E u', E u'²) of one SGD step; its fixed point is compared
    with the closed form η Σ*/B / (2h − ηh² − ηA/B)."""
    a = np.array([0.5, 1.7, 0.9, 2.4, 1.1])
    c = np.array([0.3, -0.8, 1.4, 0.1, -0.5])
    N, B, lr = len(a), 2, 0.3
    theta_star = np.sum(a * c) / np.sum(a)
    b = a * (theta_star - c)
    assert abs(b.sum()) < 1e-12
    batches = list(itertools.product(range(N), repeat=B))
    ahat = np.array([a[list(k)].mean() for k in batches])
    bhat = np.array([b[list(k)].mean() for k in batches])
    # u' = (1 − η â) u − η b̂ with (â, b̂) independent of u:
    # E u' = E[1 − ηâ] m1 − η E b̂;  E u'² = E[(1 − ηâ)²] m2 − 2η E[(1 − ηâ) b̂] m1 + η² E b̂².
    M = np.array([[np.mean(1 - lr * ahat), 0.0],
                  [-2 * lr * np.mean((1 - lr * ahat) * bhat), np.mean((1 - lr * ahat) ** 2)]])
    v = np.array([-lr * np.mean(bhat), lr**2 * np.mean(bhat**2)])
    m1, m2 = np.linalg.solve(np.eye(2) - M, v)
    h, A, sigma_star = a.mean(), a.var(), b.var()
    assert m1 == pytest.approx(0.0, abs=1e-14)
    assert pl.sgd_stationary_variance_1d(lr, B, h, sigma_star, A) == pytest.approx(m2, rel=1e-12)
    # Past the stability edge there is no stationary second moment.
    assert pl.sgd_stationary_variance_1d(2.0 / h, B, h, sigma_star, A) == float("inf")


@pytest.mark.parametrize("phi", [1.8, 3.2, 12.0])
def test_phi_from_variance_inverts_the_variance_of_the_power_law(phi):
    """Var of p(u) ∝ (L* + ½hu²)^(−φ), by quadrature, gives back φ."""
    L_star, h = 0.4, 1.7
    w = lambda u: (L_star + 0.5 * h * u * u) ** -phi  # noqa: E731
    Z = quad(w, -np.inf, np.inf, epsabs=0, epsrel=1e-12)[0]
    var = quad(lambda u: u * u * w(u), -np.inf, np.inf, epsabs=0, epsrel=1e-12, limit=200)[0] / Z
    assert pl.phi_from_variance(var, L_star, h) == pytest.approx(phi, rel=1e-8)


# ---------------------------------------------------------------- chapters
def test_parameter_set_of_every_chapter_and_a_bad_name():
    for chapter in chapters.available_chapters():
        ps = chapters.parameter_set(chapter)
        assert isinstance(ps, ParameterSet) and ps.chapter == chapter
    with pytest.raises(ParameterError, match="chapter must be one of"):
        chapters.parameter_set("no_such_chapter")


def test_repo_root_holds_the_book_and_can_be_overridden(tmp_path, monkeypatch):
    monkeypatch.delenv("SGDTEMP_ROOT", raising=False)
    root = chapters.repo_root()
    assert (root / "book").is_dir() and (root / "src" / "sgdtemp" / "chapters.py").is_file()
    monkeypatch.setenv("SGDTEMP_ROOT", str(tmp_path))
    assert chapters.repo_root() == tmp_path.resolve()


# ---------------------------------------------------------------- plotting
def test_use_style_sets_the_palette_and_the_figure_defaults():
    with mpl.rc_context():
        plotting.use_style()
        assert mpl.rcParams["axes.prop_cycle"].by_key()["color"] == plotting.PALETTE
        assert tuple(mpl.rcParams["figure.figsize"]) == (7.0, 4.0)
        assert mpl.rcParams["axes.spines.top"] is False
    assert len(set(plotting.PALETTE)) == len(plotting.PALETTE)


def test_temperature_colors_run_cold_to_hot():
    temps = [4e-3, 2.5e-4, 1e-3, 1e-3]
    colors = plotting.temperature_colors(temps)
    assert list(colors) == [2.5e-4, 1e-3, 4e-3]  # one colour per distinct T, in order
    # red minus blue grows from the coldest (bluish) to the hottest (reddish).
    warmth = [colors[t][0] - colors[t][2] for t in sorted(colors)]
    assert warmth == sorted(warmth) and warmth[0] < 0 < warmth[-1]
    # every colour, the middle one included, stands out on white: relative luminance
    # (Rec. 709 weights, no gamma: a rough bound) well below the background's 1.
    assert all(0.2126 * r + 0.7152 * g + 0.0722 * b < 0.7 for r, g, b, _ in colors.values())
    assert len(plotting.temperature_colors([0.1])) == 1


# ---------------------------------------------------------------- landscapes, claims
def test_noisy_potential_diffusion_is_half_t_kappa_sigma():
    from sgdtemp.landscapes import NoisyPotential

    p = NoisyPotential(lambda t: 0.5 * (t**2).sum(-1), lambda t: t, [0.7, 0.3], [0.1, -0.2],
                       [1.0, 0.5], 16)
    th = np.array([[0.4, -1.3], [2.0, 0.5]])
    T, kappa = 0.03, 0.8
    D = p.diffusion(th, T, kappa)
    assert D.shape == (2, 2)
    for k in range(2):  # Σ(θ) from the per-example gradients, directly
        sigma = np.cov(p.example_grads(th[k]).T, bias=True)
        np.testing.assert_allclose(np.diag(sigma) * 0.5 * T * kappa, D[k], rtol=1e-12)
        np.testing.assert_allclose(sigma - np.diag(np.diag(sigma)), 0.0, atol=1e-12)


def test_publish_shows_the_table_and_carries_the_records(monkeypatch):
    import IPython.display

    from sgdtemp.claims import METADATA_KEY, ClaimsTable

    shown = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda data, metadata=None, raw=False: shown.append((data, metadata, raw)))
    t = ClaimsTable("demo")
    t.compare("a", "one equals one", 1.0, 1.0, 0.1)
    t.publish()
    (data, metadata, raw), = shown
    assert raw and "one equals one" in data["text/html"] and "[ok] a" in data["text/plain"]
    assert metadata[METADATA_KEY] == {"chapter": "demo", "claims": t.records()}


# ---------------------------------------------------------------- the inventory itself
def chapter_calls() -> dict[str, set[str]]:
    """``{"module.name": {chapters}}`` for every library function or class a chapter imports
    from ``sgdtemp`` or calls through a module alias (``from sgdtemp import power_law as pl``
    then ``pl.name``)."""
    import importlib
    import inspect
    import re

    calls: dict[str, set[str]] = {}
    for md in sorted(chapters.book_dir().glob("*.md")):
        text = md.read_text(encoding="utf-8")
        aliases = {m[2] or m[1]: m[1] for m in re.findall(r"(from sgdtemp import (\w+)(?: as (\w+))?)", text)}
        names = [(mod, n) for mod, body in re.findall(r"from sgdtemp\.([\w.]+) import (\([^)]*\)|[^\n]*)", text)
                 for n in re.split(r"[,\s()]+", body) if n]
        names += [(mod, n) for a, mod in aliases.items()
                  for n in re.findall(rf"(?<![\w.]){a}\.(\w+)", text)]
        for mod, n in names:
            obj = getattr(importlib.import_module(f"sgdtemp.{mod}"), n, None)
            if inspect.isfunction(obj) or inspect.isclass(obj):
                calls.setdefault(f"{mod}.{n}", set()).add(md.stem)
    return calls


def test_every_function_a_chapter_calls_is_named_in_a_test():
    """A guard for new chapter code: each function or class a chapter uses appears in some
    test file besides this inventory (by name: a reviewer still judges the test)."""
    import re
    from pathlib import Path

    here = Path(__file__)
    tests = "\n".join(p.read_text(encoding="utf-8") for p in here.parent.glob("test_*.py"))
    calls = chapter_calls()
    assert len(calls) > 50  # the parser still finds the chapters' calls
    untested = sorted(k for k in calls if not re.search(rf"\b{k.rsplit('.', 1)[1]}\(", tests))
    assert not untested, f"called by a chapter but named in no test: {untested}"


def test_sgd_stationary_variance_1d_near_and_at_the_stability_edge():
    # A = 0, B = 1, h = 1: den = 2 − η. At η = 1.5, E u² = ηΣ*/(2 − η) = 3Σ*; at η = 2 none.
    assert pl.sgd_stationary_variance_1d(1.5, 1, 1.0, 0.2, 0.0) == pytest.approx(0.6, rel=1e-14)
    assert pl.sgd_stationary_variance_1d(2.0, 1, 1.0, 0.2, 0.0) == float("inf")


def test_claims_report_loaders_and_toy_chapters(tmp_path, monkeypatch):
    import json

    from sgdtemp import claims_report as cr

    monkeypatch.setattr(cr, "results_dir", lambda: tmp_path)
    d = tmp_path / "intro"
    d.mkdir()
    for s in (12, 3):
        (d / f"seed{s}.json").write_text(json.dumps({"seed": s, "claims": []}))
    assert [r["seed"] for r in cr.load_runs("intro")] == [3, 12]  # in seed order
    assert cr.load_runs("power_law") == [] and cr.load_reference("intro") is None
    (d / "reference.json").write_text(json.dumps({"seed": None, "claims": [{"id": "a"}]}))
    assert cr.load_reference("intro") == {"seed": None, "claims": [{"id": "a"}]}
    assert [r["seed"] for r in cr.load_runs("intro")] == [3, 12]  # the reference is not a seed
    toys = cr.toy_chapters()
    assert "intro" in toys and "power_law" in toys and "cifar10_temperature" not in toys
    order = chapters.available_chapters()
    assert toys == sorted(toys, key=order.index)  # in the book's order


def test_legends_off_the_data():
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2)
    try:
        a.plot([0, 1], label="η/B = 1e-3")
        b.plot([1, 0], label="η/B = 4e-3")
        b.plot([0, 0], label="η/B = 1e-3")  # the same label on another panel: listed once
        leg = plotting.legend_below(fig)
        assert [t.get_text() for t in leg.get_texts()] == ["η/B = 1e-3", "η/B = 4e-3"]
        assert fig.get_layout_engine() is not None
        right = plotting.legend_outside(a)
        assert right.get_bbox_to_anchor().x0 > a.get_window_extent().x1  # right of the axes
        below = plotting.legend_outside(b, loc="below")
        assert below.get_bbox_to_anchor().y0 < b.get_window_extent().y0  # under the axes
        with pytest.raises(ValueError, match="loc must be 'right' or 'below'"):
            plotting.legend_outside(a, loc="left")
    finally:
        plt.close(fig)


def test_sparse_log_ticks_label_one_two_five_per_decade():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        ax.set_xscale("log")
        ax.set_xlim(2e-3, 3e-2)
        plotting.sparse_log_ticks(ax)
        ticks = [t for t in ax.get_xticks() if 2e-3 <= t <= 3e-2]
        assert ticks == pytest.approx([2e-3, 5e-3, 1e-2, 2e-2], rel=1e-9)
        assert ax.xaxis.get_minor_formatter()(3e-3) == ""
    finally:
        plt.close(fig)


@pytest.mark.parametrize("lo,hi", [(0.25, 3.0), (1.08, 2.69), (2e-3, 3e-2), (150.0, 800.0)])
def test_sparse_log_ticks_label_every_major_tick(lo, hi):
    """Every major tick inside the axis gets a label, whether the range spans a decade or
    less (then matplotlib falls back to linear ticks) — an unlabelled log axis is unreadable."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        ax.set_yscale("log")
        ax.set_ylim(lo, hi)
        plotting.sparse_log_ticks(ax, "y")
        fig.canvas.draw()
        labels = [t.get_text() for t in ax.get_yticklabels() if lo <= t.get_position()[1] <= hi]
        assert len(labels) >= 2 and all(labels), labels
    finally:
        plt.close(fig)
