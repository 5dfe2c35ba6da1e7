"""Bayesian evidence of a model with a Gaussian prior, by Laplace's method.

For per-example negative log-likelihoods ℓ_i(θ) (natural log, units of nats) and a
Gaussian prior θ ~ N(0, P⁻¹) with precision matrix P (P = λI: prior precision λ),
the *summed regularised cost* is

    C(θ) = Σ_i ℓ_i(θ) + ½ θᵀPθ,

and the evidence P(y | X) = ∫ e^{−Σℓ_i(θ)} N(θ; 0, P⁻¹) dθ. Expanding C to second
order around its minimum θ* (Laplace) gives

    log P(y | X) ≈ −C(θ*) − ½ log det(H P⁻¹),     H = ∇²C(θ*),

which for P = λI is −C(θ*) − ½ Σ_k log(λ_k/λ) over the eigenvalues λ_k of H: the
cost at the minimum plus an *Occam factor* that penalises sharp minima. For a quadratic
C (linear regression with Gaussian noise) the expansion is exact.

The evidence is a property of the model (likelihood + prior), not of the coordinates:
writing θ = Aθ' with A invertible turns the data Hessian into AᵀHA and the prior
precision into AᵀPA, and det(AᵀHA (AᵀPA)⁻¹) = det(H P⁻¹). Raw curvature (trace or top
eigenvalue of H) has no such invariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sgdtemp.regression import LogisticRegression


def _precision_matrix(prior_precision, dim: int) -> np.ndarray:
    p = np.asarray(prior_precision, dtype=float)
    return p * np.eye(dim) if p.ndim == 0 else p


def occam_factor(hessian_sum: np.ndarray, prior_precision) -> float:
    """Occam factor −½ log det(H P⁻¹) (nats): −½ Σ_k log(λ_k/λ) when P = λI.

    ``hessian_sum``: Hessian of the summed regularised cost (d, d); ``prior_precision``:
    λ (scalar) or the precision matrix P (d, d).
    """
    H = np.asarray(hessian_sum, dtype=float)
    P = _precision_matrix(prior_precision, H.shape[0])
    # H P⁻¹ is similar to L⁻¹ H L⁻ᵀ (P = LLᵀ), which is symmetric positive definite.
    Lc = np.linalg.cholesky(P)
    M = np.linalg.solve(Lc, np.linalg.solve(Lc, H).T)
    sign, logdet = np.linalg.slogdet(0.5 * (M + M.T))
    if sign <= 0:
        raise ValueError("the Hessian is not positive definite at this point")
    return -0.5 * logdet


def laplace_log_evidence(cost_at_min: float, hessian_sum: np.ndarray, prior_precision) -> float:
    """log P(y | X) ≈ −C(θ*) − ½ log det(H P⁻¹), in nats.

    ``cost_at_min`` = Σ_i ℓ_i(θ*) + ½ θ*ᵀPθ* (negative log-likelihoods summed, not
    averaged); ``hessian_sum`` = ∇²C(θ*).
    """
    return -float(cost_at_min) + occam_factor(hessian_sum, prior_precision)


def gaussian_linear_log_evidence(X: np.ndarray, y: np.ndarray, prior_precision: float,
                                 noise_var: float) -> float:
    """Exact log marginal likelihood of Bayesian linear regression (nats).

    y = Xθ + ε, ε ~ N(0, σ²I), θ ~ N(0, I/λ) ⇒ y ~ N(0, σ²I + XXᵀ/λ).
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n = X.shape[0]
    K = noise_var * np.eye(n) + X @ X.T / prior_precision
    Lc = np.linalg.cholesky(K)
    a = np.linalg.solve(Lc, y)
    return float(-0.5 * a @ a - np.log(np.diag(Lc)).sum() - 0.5 * n * np.log(2 * np.pi))


def gaussian_linear_laplace_log_evidence(X: np.ndarray, y: np.ndarray, prior_precision: float,
                                         noise_var: float) -> float:
    """The Laplace formula applied to Bayesian linear regression (exact for this model).

    ℓ_i = (x_iᵀθ − y_i)²/(2σ²) + ½ log(2πσ²); C = Σℓ_i + ½λ||θ||²; H = XᵀX/σ² + λI.
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    n, d = X.shape
    H = X.T @ X / noise_var + prior_precision * np.eye(d)
    theta = np.linalg.solve(H, X.T @ y / noise_var)
    r = X @ theta - y
    cost = (r @ r / (2 * noise_var) + 0.5 * n * np.log(2 * np.pi * noise_var)
            + 0.5 * prior_precision * theta @ theta)
    return laplace_log_evidence(cost, H, prior_precision)


# ---------------------------------------------------------------- logistic regression
@dataclass
class LogisticEvidence:
    """Laplace evidence of logistic regression at one prior precision.

    ``theta``: the MAP parameters θ*; ``log_evidence`` (nats); ``cost``: C(θ*);
    ``occam``: the Occam factor; ``hessian_sum``: ∇²C(θ*) (d, d);
    ``data_hessian``: Σ_i ∇²ℓ_i(θ*), the curvature without the prior (d, d).
    """

    theta: np.ndarray
    log_evidence: float
    cost: float
    occam: float
    hessian_sum: np.ndarray
    data_hessian: np.ndarray


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def logistic_map(X: np.ndarray, labels: np.ndarray, prior_precision, *, theta0=None,
                 tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """MAP estimate of logistic regression with prior N(0, P⁻¹), by Newton's method.

    Minimises C(θ) = Σ_i log(1 + e^{−s_i x_iᵀθ}) + ½ θᵀPθ (strictly convex for P ≻ 0);
    stops when the Newton decrement² /2 < ``tol`` (nats).
    """
    X = np.asarray(X, dtype=float)
    n, d = X.shape
    s = _pm_one(labels)
    P = _precision_matrix(prior_precision, d)
    theta = np.zeros(d) if theta0 is None else np.array(theta0, dtype=float)

    def cost(t):
        return np.logaddexp(0.0, -s * (X @ t)).sum() + 0.5 * t @ P @ t

    c = cost(theta)
    for _ in range(max_iter):
        m = s * (X @ theta)
        g = -(X.T @ (s * _sigmoid(-m))) + P @ theta
        w = _sigmoid(m) * _sigmoid(-m)
        H = (X.T * w) @ X + P
        step = np.linalg.solve(H, g)
        dec = g @ step
        if dec / 2 < tol:
            break
        t = 1.0  # backtracking line search keeps Newton globally convergent
        while True:
            new = theta - t * step
            cn = cost(new)
            if cn <= c - 0.25 * t * dec or t < 1e-12:
                break
            t *= 0.5
        theta, c = new, cn
    return theta


def _pm_one(labels) -> np.ndarray:
    s = np.asarray(labels)
    if set(np.unique(s)).issubset({0, 1}):
        s = 2 * s - 1
    return s.astype(float)


def logistic_evidence(X: np.ndarray, labels: np.ndarray, prior_precision, *,
                      theta0=None) -> LogisticEvidence:
    """Laplace log-evidence of logistic regression (summed loss, prior N(0, P⁻¹)).

    The data Hessian is the exact Σ_i σ(m_i)σ(−m_i) x_i x_iᵀ, i.e. N times
    :meth:`sgdtemp.regression.LogisticRegression.hessian` with ``l2`` = 0 (computed here
    as one matrix product, which is much faster than that method's einsum).
    """
    X = np.asarray(X, dtype=float)
    n, d = X.shape
    P = _precision_matrix(prior_precision, d)
    theta = logistic_map(X, labels, P, theta0=theta0)
    problem = LogisticRegression(X, labels)
    m = problem.margins(theta)
    data_h = (X.T * (_sigmoid(m) * _sigmoid(-m))) @ X
    H = data_h + P
    cost = float(problem.example_losses(theta).sum() + 0.5 * theta @ P @ theta)
    occ = occam_factor(H, P)
    return LogisticEvidence(theta, -cost + occ, cost, occ, H, data_h)


def reparametrized(X: np.ndarray, prior_precision, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and prior precision in coordinates θ' with θ = Aθ'.

    xᵀθ = (Aᵀx)ᵀθ', so X' = XA; θ ~ N(0, P⁻¹) ⇔ θ' ~ N(0, (AᵀPA)⁻¹). Same model, same
    evidence; the curvature Σ∇²ℓ_i becomes Aᵀ(Σ∇²ℓ_i)A.
    """
    A = np.asarray(A, dtype=float)
    P = _precision_matrix(prior_precision, A.shape[0])
    return np.asarray(X, dtype=float) @ A, A.T @ P @ A


# ------------------------------------------------------------------ capacity (Cover)
def linearly_separable(X: np.ndarray, labels: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether some θ classifies every example correctly, s_i x_iᵀθ > 0 for all i.

    Decided by linear programming, independent of any optimiser or prior: maximise the
    margin t subject to s_i x_iᵀθ ≥ t, ``|θ_j| ≤ 1``, t ≤ 1. The problem is always feasible
    (θ = 0, t = 0) and bounded; the labels are separable iff the optimal t > ``tol`` and the
    optimal θ separates them when checked directly.
    ``labels`` in {−1, +1} or {0, 1}.
    """
    from scipy.optimize import linprog

    X = np.asarray(X, dtype=float)
    s = np.asarray(labels, dtype=float)
    if set(np.unique(s)).issubset({0.0, 1.0}):
        s = 2 * s - 1
    n, d = X.shape
    # variables (θ, t); minimise −t; rows: t − s_i x_iᵀθ ≤ 0
    A = np.hstack([-(s[:, None] * X), np.ones((n, 1))])
    c = np.zeros(d + 1)
    c[-1] = -1.0
    res = linprog(c, A_ub=A, b_ub=np.zeros(n), bounds=[(-1, 1)] * d + [(None, 1)],
                  method="highs")
    if res.status != 0:
        raise RuntimeError(f"the separability LP did not finish ({res.message})")
    # The answer "separable" is certified by the returned θ itself, checked directly in
    # floating point (the LP's own feasibility tolerance could pass a margin of ~1e-7).
    theta = res.x[:d]
    return bool(-res.fun > tol and np.min(s * (X @ theta)) > 0)


def cover_separable_probability(n: int, dim: int) -> float:
    """Cover's function: the probability that n points in general position in ℝ^dim
    (hyperplanes through the origin; a bias counts as one dimension), labelled at random,
    are linearly separable: C(n, d)/2ⁿ = 2^(1−n) Σ_{k<d} binom(n − 1, k). 1 for n ≤ d,
    ½ at n = 2d."""
    from scipy.stats import binom

    if n <= dim:
        return 1.0
    return float(binom.cdf(dim - 1, n - 1, 0.5))


# ------------------------------------------------------------ the chapter's small task
def pooled_features(images: np.ndarray, pool: int) -> np.ndarray:
    """Images (n, h, w) of bytes → features (n, ⌊h/pool⌋·⌊w/pool⌋) in [0, 1]: pixels scaled
    by 1/255 and averaged over pool × pool blocks (rows and columns that do not fill a block
    are dropped)."""
    p = pool
    n, h, w = images.shape
    x = images[:, : h - h % p, : w - w % p].astype(float) / 255.0
    return x.reshape(n, h // p, p, w // p, p).mean((2, 4)).reshape(n, -1)


def binary_task(x_train, y_train, x_test, y_test, classes, pool: int):
    """The two-class problem of the chapter: ``(X_pool, s_pool, X_test, s_test)``.

    Images of the two ``classes`` are pooled (:func:`pooled_features`), standardised as
    (F − μ)/σ with the per-pixel mean μ and the single overall standard deviation σ of the
    training images of the two classes, and given a constant input 1 for the bias (last
    column). Labels s = +1 for the second class, −1 for the first.
    """
    c0, c1 = classes
    pick_tr, pick_te = np.isin(y_train, classes), np.isin(y_test, classes)
    F_tr, F_te = pooled_features(x_train[pick_tr], pool), pooled_features(x_test[pick_te], pool)
    mu, sd = F_tr.mean(0), F_tr.std()

    def with_bias(F):
        return np.hstack([(F - mu) / sd, np.ones((len(F), 1))])

    return (with_bias(F_tr), np.where(y_train[pick_tr] == c1, 1, -1),
            with_bias(F_te), np.where(y_test[pick_te] == c1, 1, -1))


def evidence_over_priors(X_pool, s_pool, X_test, s_test, prior_precisions, n_train: int,
                         n_subsets: int, rng: np.random.Generator) -> dict:
    """Laplace evidence, Occam factor and error rates of real and random labels, per subset
    and prior precision.

    Returns ``{"real"|"random": {"logZ"|"occam"|"train_err"|"test_err": (n_subsets, M)}}``
    for the M ``prior_precisions`` (log-evidence and Occam factor in nats, summed over the
    ``n_train`` examples; error rates as fractions, a margin s·xᵀθ* ≤ 0 counting as an
    error). Each subset draws ``n_train`` images from the pool without replacement and an
    independent random labelling of them; the random labels are scored against one random
    labelling of the test set (drawn first). Within a subset the priors are solved from the
    strongest (last) to the weakest, each Newton solve starting from the previous θ*.
    Draws from ``rng`` in a fixed order, so a seed fixes every subset.
    """
    lams = np.asarray(prior_precisions, dtype=float)
    M = len(lams)
    res = {k: {q: np.zeros((n_subsets, M)) for q in ("logZ", "occam", "train_err", "test_err")}
           for k in ("real", "random")}
    s_test_random = rng.choice([-1, 1], size=len(X_test))
    for j in range(n_subsets):
        idx = rng.choice(len(X_pool), n_train, replace=False)
        X = X_pool[idx]
        labels = {"real": s_pool[idx], "random": rng.choice([-1, 1], size=n_train)}
        for kind, s in labels.items():
            theta = None
            s_t = s_test if kind == "real" else s_test_random
            for i in reversed(range(M)):
                e = logistic_evidence(X, s, lams[i], theta0=theta)
                theta = e.theta
                res[kind]["logZ"][j, i] = e.log_evidence
                res[kind]["occam"][j, i] = e.occam
                res[kind]["train_err"][j, i] = np.mean(s * (X @ theta) <= 0)
                res[kind]["test_err"][j, i] = np.mean(s_t * (X_test @ theta) <= 0)
    return res


def spectrum_rank(X: np.ndarray, rtol: float = 1e-10) -> tuple[int, float]:
    """``(rank, participation ratio)`` of the singular values σ_k of X: the number of σ_k
    above ``rtol``·σ_max, and (Σσ_k)²/Σσ_k², the effective number of directions that carry
    spread (d for equal σ_k, 1 for a single one)."""
    sv = np.linalg.svd(X, compute_uv=False)
    return int(np.sum(sv > sv[0] * rtol)), float(sv.sum() ** 2 / np.sum(sv**2))


# --------------------------------------------------- the network runs: scans over batch size
def run_table(records, window: int | None) -> dict:
    """One entry per run (arrays in the records' order): learning rate ε ``lr``, ``n_train``
    N, ``momentum`` m, ``batch_size`` B, ``seed``, the noise scale ``g`` = εN/((1 − m)B), and
    ``acc``, the test accuracy in percent (the mean of the last ``window`` epochs; None: the
    final epoch; NaN for a diverged run)."""
    from sgdtemp.records import metric

    t = {k: metric(records, f"config.{k}") for k in ("lr", "n_train", "momentum", "batch_size", "seed")}
    t["g"] = t["lr"] * t["n_train"] / ((1 - t["momentum"]) * t["batch_size"])
    t["acc"] = 100 * metric(records, "test_acc", window=window)
    return t


def scan_curve(table: dict, eps: float, n: float) -> tuple[np.ndarray, np.ndarray]:
    """One cell (ε, N) of a :func:`run_table`: its batch sizes (ascending) and its
    accuracies (%), seeds (ascending) × batch sizes, NaN where a run is missing."""
    sel = (table["lr"] == eps) & (table["n_train"] == n)
    b_all, seeds = np.unique(table["batch_size"][sel]), np.unique(table["seed"][sel])
    Y = np.full((seeds.size, b_all.size), np.nan)
    Y[np.searchsorted(seeds, table["seed"][sel]),
      np.searchsorted(b_all, table["batch_size"][sel])] = table["acc"][sel]
    return b_all, Y


def seed_peaks(b_all: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Each seed's peak over the batch sizes, rows ``(log B_peak, side)``: the three-point
    parabola in log B (:func:`sgdtemp.stats.peaks.log_parabola_peak`) on the seed's finite values;
    side 0 for an interior peak, −1/+1 for a peak at the scan's low-/high-B end (a bound
    only); NaN for both with fewer than 3 finite values."""
    from sgdtemp import stats as st

    out = []
    for row in Y:
        ok = np.isfinite(row)
        p = st.log_parabola_peak(b_all[ok], row[ok]) if ok.sum() >= 3 else None
        side = np.nan if p is None else (0 if p.interior else (-1 if p.x <= b_all[ok][0] else 1))
        out.append((np.nan if p is None else np.log(p.x), side))
    return np.array(out, float)


def end_gaps(Y: np.ndarray) -> np.ndarray:
    """Per seed (rows of Y, seeds × batch sizes, accuracies in points): the accuracy at the
    best batch size — chosen on the *other* seeds' mean curve — minus the accuracy at the
    low-B end (column 0) and minus that at the high-B end (column 1)."""
    d = np.full((len(Y), 2), np.nan)
    for k in range(len(Y)):
        j = int(np.nanargmax(np.nanmean(np.delete(Y, k, axis=0), axis=0)))
        d[k] = Y[k, j] - Y[k, 0], Y[k, j] - Y[k, -1]
    return d


def interior_optimum_rows(curves: dict, sd_run: float, dof: int, effect: float) -> list[dict]:
    """One row per cell (ε, N) → (batch sizes, seeds × batch sizes) of ``curves``: the
    directional test that both ends of the scan lie below the best batch size.

    Each gap (:func:`end_gaps`, mean over seeds, points) is tested against the smallest gap
    that matters ``effect`` (:func:`sgdtemp.stats.decisions.directional`, sign +1) with standard error
    ``sd_run``·√(2/n) for n seeds (one run's seed-paired noise, ``dof`` degrees of freedom).
    Keys: ``eps``, ``N``, ``n_B`` (batch sizes), ``gap_lowB``, ``gap_highB``, ``verdict``
    (:func:`sgdtemp.stats.decisions.joint_verdict` of the two), and the seeds whose peak
    (:func:`seed_peaks`) is
    ``interior``, at the ``low`` end or at the ``high`` end.
    """
    from sgdtemp import stats as st

    rows = []
    for (eps, n), (b_all, Y) in curves.items():
        gaps = [st.directional(np.nanmean(g_), sd_run * np.sqrt(2 / np.isfinite(g_).sum()), effect,
                               1, dof) for g_ in end_gaps(Y).T]
        side = seed_peaks(b_all, Y)[:, 1]
        rows.append(dict(eps=eps, N=int(n), n_B=b_all.size, gap_lowB=gaps[0].estimate,
                         gap_highB=gaps[1].estimate, verdict=st.joint_verdict(d.verdict for d in gaps),
                         interior=int(np.sum(side == 0)), low=int(np.sum(side == -1)),
                         high=int(np.sum(side == 1))))
    return rows


def format_interior_rows(rows: list[dict]) -> str:
    """The rows of :func:`interior_optimum_rows` as a fixed-width text table."""
    head = "  ε      N    B's  gap at low B  gap at high B  verdict     seeds: interior / at low B / at high B"
    return "\n".join([head] + [f"{r['eps']:6g} {r['N']:5d} {r['n_B']:4d} {r['gap_lowB']:10.2f} "
                               f"{r['gap_highB']:13.2f}    {r['verdict']:11s} {r['interior']} / {r['low']} / "
                               f"{r['high']}" for r in rows])


def peak_rows(curves: dict) -> np.ndarray:
    """Every seed's peak of every cell, rows ``(log ε, log N, cell index, log B_peak, side)``
    (cells in the order of ``curves``; peak and side as in :func:`seed_peaks`)."""
    return np.array([(np.log(e), np.log(n), i, *p) for i, ((e, n), (b_all, Y)) in enumerate(curves.items())
                     for p in seed_peaks(b_all, Y)])


def log_noise_scale(rows: np.ndarray) -> np.ndarray:
    """log(εN/B_peak) of :func:`peak_rows` rows: the log of the noise scale at each peak."""
    return rows[:, 0] + rows[:, 1] - rows[:, 3]


@dataclass
class PeakShift:
    """The shift of log B_opt between two cells (:func:`peak_shift`).

    ``shift``: mean log peak of the first cell minus that of the second; ``se``: its standard
    error; ``dof``: degrees of freedom of the pooled spread; ``bound``: None where the shift is
    an estimate from interior peaks, else "lower"/"upper" (censored peaks make it a bound on
    that side) or "none" (censored on both sides); ``censored_1``, ``censored_2``: seeds
    censored at an end in each cell.
    """

    shift: float
    se: float
    dof: int
    bound: str | None
    censored_1: int
    censored_2: int


def pooled_peak_spread(inner: np.ndarray) -> tuple[float, int]:
    """The spread of one log peak, pooled over cells, from :func:`peak_rows` rows ``inner``
    (side 0): s² = Σ(log peak − its cell's mean)²/dof, dof = peaks − cells; (NaN, dof) when
    no degree of freedom is left. Units of log B."""
    resid = [r[3] - inner[inner[:, 2] == r[2], 3].mean() for r in inner]
    dof = len(inner) - len(np.unique(inner[:, 2]))
    return (float(np.sqrt(np.sum(np.square(resid)) / dof)) if dof > 0 else np.nan), dof


def peak_shift(peaks_1: np.ndarray, peaks_2: np.ndarray, inner: np.ndarray) -> PeakShift:
    """The log ratio of the optimal batch sizes of two cells, from :func:`seed_peaks` rows
    ``(log B_peak, side)`` of each.

    The spread of one log peak is pooled over the interior peaks of all cells, ``inner``
    (:func:`peak_rows` rows with side 0): s² = Σ(residual from its cell's mean)²/dof, dof =
    peaks − cells; se = s·√(1/n₁ + 1/n₂). Without censored seeds the shift is the difference
    of the interior peaks' means. A seed censored at an end leaves a bound: the first cell at
    its high-B end or the second at its low-B end bound the shift from below ("lower"), the
    opposite ends from above ("upper"); the shift is then the difference of all seeds' means.
    """
    s, dof = pooled_peak_spread(inner)
    sides = (set(np.sign(peaks_1[peaks_1[:, 1] != 0, 1]).tolist())
             | set((-np.sign(peaks_2[peaks_2[:, 1] != 0, 1])).tolist()))
    bound = None if not sides else ("none" if len(sides) == 2 else ("lower" if 1.0 in sides else "upper"))
    use_1, use_2 = ((peaks_1[:, 0], peaks_2[:, 0]) if bound
                    else (peaks_1[peaks_1[:, 1] == 0, 0], peaks_2[peaks_2[:, 1] == 0, 0]))
    shift = float(np.nanmean(use_1) - np.nanmean(use_2))
    se = s * np.sqrt(1 / max(1, np.isfinite(use_1).sum()) + 1 / max(1, np.isfinite(use_2).sum()))
    return PeakShift(shift, se, dof, bound, int((peaks_1[:, 1] != 0).sum()), int((peaks_2[:, 1] != 0).sum()))


@dataclass(frozen=True)
class NoiseScaleAtOptimum:
    """A scan cell's optimal batch size set beside the gradient noise scale of its networks
    (:func:`noise_scale_at_optimum`).

    ``log_bopt``: the mean log B_peak of the cell's interior seed peaks, ± ``se_log_bopt``
    (the spread of one log peak pooled over all cells, ``dof`` degrees of freedom);
    ``censored``: the cell's seeds whose peak sits at an end of the scan; ``batch_size``: the
    scan's batch size nearest exp(log_bopt), the run B_simple is read from; ``epochs``,
    ``b_simple``, ``b_simple_se``: B_simple = tr Σ/‖G‖² (examples) and its jackknife error at
    each checkpoint of that run (inf where ‖G‖² was not resolved)."""

    log_bopt: float
    se_log_bopt: float
    dof: int
    censored: int
    batch_size: int
    epochs: np.ndarray
    b_simple: np.ndarray
    b_simple_se: np.ndarray

    @property
    def log_ratio(self) -> float:
        """The natural log of B_simple over B_opt at the last checkpoint, positive when the
        optimum lies in the noise-dominated regime."""
        return float(np.log(self.b_simple[-1]) - self.log_bopt)

    @property
    def se(self) -> float:
        """The standard error of :attr:`log_ratio`, √(se_log_bopt² + (se_B/B)²), the second
        term the delta-method error of ln B_simple (the two come from different runs)."""
        return float(np.hypot(self.se_log_bopt, self.b_simple_se[-1] / self.b_simple[-1]))


def noise_scale_at_optimum(peaks: np.ndarray, inner: np.ndarray, records) -> NoiseScaleAtOptimum:
    """B_opt of one cell, from its :func:`seed_peaks` rows ``peaks`` ``(log B_peak, side)``,
    against B_simple measured along the run of ``records`` (the cell's noise-scale runs, one
    per batch size, each with a ``noise_scale`` series) whose batch size is nearest B_opt in
    log B. The log peak's error is the pooled spread of ``inner`` (:func:`peak_rows` rows with
    side 0, as in :func:`peak_shift`) over √(interior peaks of the cell)."""
    s, dof = pooled_peak_spread(inner)
    if dof < 1:
        raise ValueError("inner must hold more interior peaks than cells to pool their spread.")
    lp = peaks[peaks[:, 1] == 0, 0]
    if lp.size == 0:
        raise ValueError("the cell has no interior peak: its optimum is only a bound.")
    log_bopt = float(lp.mean())
    records = list(records)
    if not records or any("noise_scale" not in r for r in records):
        raise ValueError("records must be the cell's noise-scale runs, each with a noise_scale series.")
    r = min(records, key=lambda r: abs(np.log(r["config"]["batch_size"]) - log_bopt))
    ns = r["noise_scale"]
    return NoiseScaleAtOptimum(log_bopt, s / np.sqrt(lp.size), dof, int((peaks[:, 1] != 0).sum()),
                               int(r["config"]["batch_size"]), np.asarray(ns["epoch"], float),
                               np.asarray(ns["b_simple"], float), np.asarray(ns["b_simple_stderr"], float))


def bounded_verdict(verdict: str, interval: tuple[float, float], margin: float, bound: str | None) -> str:
    """The verdict of an equivalence test whose estimate may be only a bound.

    An estimate (``bound`` None) keeps ``verdict``. A lower bound decides only a failure
    above the margin (interval's low end > ``margin``), an upper bound only one below it
    (high end < −``margin``); anything else is "unresolved"."""
    if bound is None:
        return verdict
    lo, hi = interval
    beyond = (bound == "lower" and lo > margin) or (bound == "upper" and hi < -margin)
    return "fails" if beyond else "unresolved"


def g_doubling_steps(curves: dict) -> np.ndarray:
    """``|Δ accuracy|`` per doubling of the noise scale g = εN/B between neighbouring batch
    sizes of every scan (points per doubling; seed-mean curves; NaN where a mean is missing),
    all cells concatenated."""
    return np.concatenate([np.abs(np.diff(np.nanmean(Y, axis=0))) / np.abs(np.diff(np.log2(e * n / b_all)))
                           for (e, n), (b_all, Y) in curves.items()])


def collapse_labels(table: dict) -> tuple[np.ndarray, np.ndarray]:
    """Labels of each run of a :func:`run_table` for the collapse test: its (N, log₂ g) cell
    and its (N, seed) pair (a seed's initial weights are shared within one N only)."""
    cell = np.array([f"{n:g}/{np.log2(g):.3f}" for n, g in zip(table["n_train"], table["g"])])
    seed = np.array([f"{n:g}/{s:g}" for n, s in zip(table["n_train"], table["seed"])])
    return cell, seed
