"""One figure style for the whole book (no chapter-specific figures live here)."""

from __future__ import annotations

import matplotlib as mpl

# Colour-blind-safe palette (Okabe–Ito), in the order curves are usually drawn.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


# Pixels of the book's text column at 1280 px (sphinx-book-theme): a figure wider than
# TEXT_WIDTH_IN inches at DPI is scaled down to fit, and its text shrinks with it.
DPI = 100
TEXT_WIDTH_IN = 7.3


def use_style() -> None:
    """Set matplotlib defaults used by every chapter.

    Figures are drawn at ``DPI`` dots per inch and sent to the page as "retina" PNGs
    (twice the pixels, displayed at ``DPI``), so they stay sharp on high-density screens.
    Fonts are sized so that a two-panel figure 10 inches wide, scaled into the
    7.3-inch text column, still shows legends and ticks at about 10 screen pixels.
    """
    mpl.rcParams.update({
        "figure.dpi": DPI,
        "savefig.dpi": 2 * DPI,
        "figure.figsize": (7.0, 4.0),
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.25,
        "legend.frameon": True,  # a legend that must sit near data stays legible
        "legend.framealpha": 0.85,
        "legend.edgecolor": "none",
        "legend.fontsize": 10.5,
        "font.size": 12,
        "axes.titlesize": 12,
        "axes.labelsize": 12,
        "xtick.labelsize": 10.5,
        "ytick.labelsize": 10.5,
    })
    try:  # inside IPython/Jupyter: double-resolution PNGs shown at their 1x size
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        if get_ipython() is not None:
            set_matplotlib_formats("retina")
    except ImportError:
        pass


def legend_outside(ax, loc: str = "right", **kwargs):
    """A legend beside (``loc="right"``) or below (``loc="below"``) the axes, off the
    data. Use it when the curves fill the axes and no corner is free."""
    if loc == "right":
        return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
                         **kwargs)
    if loc == "below":
        ncol = kwargs.pop("ncol", 3)
        return ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=ncol,
                         borderaxespad=0, **kwargs)
    raise ValueError(f"loc must be 'right' or 'below'; got {loc!r}.")


def legend_below(fig, axes=None, ncol: int = 3, **kwargs):
    """One legend for the whole figure, below its panels and so off the data.

    Collects the labelled artists of ``axes`` (default: every axes of ``fig``, twin axes
    included), each label once, and switches the figure to constrained layout so the
    legend gets room of its own."""
    import numpy as np

    axes = fig.axes if axes is None else list(np.atleast_1d(axes).ravel())
    entries: dict = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if fig.get_layout_engine() is None:
        fig.set_layout_engine("constrained")
    return fig.legend(list(entries.values()), list(entries), loc="outside lower center",
                      ncol=max(1, min(ncol, len(entries))), **kwargs)


def sparse_log_ticks(ax, axis: str = "x") -> None:
    """Readable tick labels on a log axis that spans little more than a decade.

    There matplotlib labels minor ticks (``3×10⁻³ 4×10⁻³ ...``), which collide; instead
    put major ticks at 1, 2 and 5 times each power of ten and leave minor ticks
    unlabelled. Every major tick is labelled (a log formatter would hide some of them), in
    plain numbers between 10⁻³ and 10⁴ and in powers of ten outside; on a range with fewer
    than two such ticks matplotlib's locator falls back to linear ticks, labelled the same way."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def label(value, _pos):
        if value <= 0:
            return ""
        if 1e-3 <= value < 1e4:
            return f"{value:g}"
        mantissa, exponent = f"{value:.0e}".split("e")
        power = f"10^{{{int(exponent)}}}"
        return f"${power}$" if mantissa == "1" else f"${mantissa}\\times{power}$"

    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    target.set_major_formatter(FuncFormatter(label))
    target.set_minor_formatter(NullFormatter())


def temperature_colors(temperatures) -> dict:
    """A colour per temperature, cold (dark blue) to hot (orange), for plots over T.

    A sequential map ("plasma", cut before its pale yellow end) rather than a diverging
    one: a diverging map's pale middle makes the middle temperature invisible on white."""
    import numpy as np

    ts = sorted(set(temperatures))
    cmap = mpl.colormaps["plasma"]
    pos = np.linspace(0.05, 0.8, len(ts)) if len(ts) > 1 else [0.4]
    return {t: cmap(p) for t, p in zip(ts, pos)}
