"""Every statistic the book's claims are judged with, in one place.

* :mod:`~sgdtemp.stats.basic`: means, paired differences, seed-paired spreads, slopes,
  plateaus, the fraction of a gap closed, χ², bootstrap and the rates of the tolerance rule.
* :mod:`~sgdtemp.stats.decisions`: the three verdicts (holds, fails, unresolved) — the
  equivalence test of agreement claims, the directional test, the Student-t multiple of a
  standard error, and the 80%-power detectable difference on the noncentral t.
* :mod:`~sgdtemp.stats.contrasts`: the one-degree-of-freedom test of T-invariance (log η at
  fixed T with seed effects), nested F tests, window means.
* :mod:`~sgdtemp.stats.collapse`: grouping tests (R², equal-label F) and the breaking point
  of (βη, βB) rescaling.
* :mod:`~sgdtemp.stats.peaks`: the optimum of a curve over a log grid, with censoring.

Everything is importable from ``sgdtemp.stats`` itself.
"""

from sgdtemp.stats.basic import *  # noqa: F401,F403
from sgdtemp.stats.basic import __all__ as _basic_all
from sgdtemp.stats.collapse import (BreakingPoint, FTest, breaking_point, equal_label_f_test,  # noqa: F401
                                    value_at_level, variance_explained)
from sgdtemp.stats.contrasts import (Coefficient, FixedEffectsFit, NestedF,  # noqa: F401
                                     fixed_effects_coefficient, fixed_effects_fit,
                                     invariance_contrast, nested_f_test, window_mean)
from sgdtemp.stats.decisions import (POWER, VERDICTS, Z_CLAIM, Decision,  # noqa: F401
                                     detectable_difference, directional, equivalence, joint_verdict,
                                     rejection_rate, seeds_to_detect, t_multiplier)
from sgdtemp.stats.peaks import Peak, PeakEstimate, log_parabola_peak, peak_over_seeds  # noqa: F401
