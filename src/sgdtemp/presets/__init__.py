"""One module per chapter, each defining ``PARAMETERS``: a :class:`sgdtemp.params.ParameterSet`.

The module name is the chapter id (``sgdtemp.presets.two_minima`` for ``book/two_minima.md``).
"""
