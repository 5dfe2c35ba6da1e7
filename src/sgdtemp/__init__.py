"""sgdtemp: the temperature T = lr / batch_size of stochastic gradient descent.

The library behind the executable monograph. Modules, one idea each:

* ``params``, ``claims``, ``chapters``, ``cli``: the interfaces all chapters share.
* ``landscapes``, ``regression``: finite-sum problems with exact L, ∇L, H and Σ(θ).
* ``dynamics``: many-replica minibatch SGD and Euler–Maruyama for the SDE.
* ``fokker_planck``: stationary densities, grid Fokker–Planck solvers, escape times.

Submodules are imported on demand so ``import sgdtemp`` stays light.
"""

import os

# Idle OpenMP threads that spin steal a shared 2-core CPU from the threads doing work
# (measured: small-CNN training fell from ~1500 to ~100 images/s under load); they must
# sleep instead. Only effective if set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
