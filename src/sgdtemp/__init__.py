"""sgdtemp: the temperature T = lr / batch_size of stochastic gradient descent.

The library behind the executable monograph. Modules, one idea each:

* ``params``, ``claims``, ``chapters``, ``cli``: the interfaces all chapters share.
* ``landscapes``, ``regression``: finite-sum problems with exact L, ∇L, H and Σ(θ).
* ``dynamics``: many-replica minibatch SGD and Euler–Maruyama for the SDE.
* ``fokker_planck``: stationary densities, grid Fokker–Planck solvers, escape times.

Submodules are imported on demand so ``import sgdtemp`` stays light.
"""

__version__ = "0.1.0"
