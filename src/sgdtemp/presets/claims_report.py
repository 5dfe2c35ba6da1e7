"""Parameters of the appendix ``claims_report``: it reads committed runs, it computes none."""

from sgdtemp.params import Param, ParameterSet, in_range

PARAMETERS = ParameterSet(
    chapter="claims_report",
    params=[
        Param("flag_p", 0.01, in_range(1e-6, 0.5),
              "a claim is flagged when P(holding this rarely | its expected rate) is below this"),
    ],
)
