"""The appendix has no knobs beyond the shared ``fidelity`` and ``seed``."""

from sgdtemp.params import ParameterSet

PARAMETERS = ParameterSet(chapter="reproducing", params=[])
