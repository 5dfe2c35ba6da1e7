"""One figure style for the whole book (no chapter-specific figures live here)."""

from __future__ import annotations

import matplotlib as mpl

# Colour-blind-safe palette (Okabe–Ito), in the order curves are usually drawn.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


def use_style() -> None:
    """Set matplotlib defaults used by every chapter."""
    mpl.rcParams.update({
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "figure.figsize": (7.0, 4.0),
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.25,
        "legend.frameon": False,
        "font.size": 10,
    })


def temperature_colors(temperatures) -> dict:
    """A colour per temperature, cold (blue) to hot (red), for plots over T."""
    import numpy as np

    ts = sorted(set(temperatures))
    cmap = mpl.colormaps["coolwarm"]
    pos = np.linspace(0.05, 0.95, len(ts)) if len(ts) > 1 else [0.5]
    return {t: cmap(p) for t, p in zip(ts, pos)}
