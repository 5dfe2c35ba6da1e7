"""The claims report: every chapter's claims over many seeds, against their expected rates.

Each toy chapter is run at one fidelity (``default``) for several seeds *through the
command line* (``python -m sgdtemp run CH --fidelity default -p seed S --out DIR``), and
its ``claims.json`` is stored with provenance as ``results/claims_report/<chapter>/seed<S>.json``.
Like the results store, a computation only runs the (chapter, seed) pairs that are missing,
so an interrupted report resumes. Network chapters read committed sweeps whose seeds are
inside them: they are run once, at default, into ``<chapter>/reference.json``.

Per claim, the report counts how often it held and compares that with its expected rate
(``expected_rate`` in the claim, see :mod:`sgdtemp.claims`): a claim is flagged when the
one-sided binomial probability of holding so rarely, P(X ≤ n_hold | n, rate), is below
``FLAG_P``.

One command recomputes everything missing::

    python -m sgdtemp claims-report --seeds 10 11 12 13 14
"""

from __future__ import annotations

import datetime as _dt
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sgdtemp.chapters import available_chapters, repo_root
from sgdtemp.files import atomic_write_json
from sgdtemp.params import ParameterError
from sgdtemp.stats import binomial_below

#: Chapters run over seeds (seconds to minutes of CPU each at default).
TOY_CHAPTERS = ("intro", "fokker_planck", "two_minima", "implicit_regularization",
                "bayesian_evidence", "power_law", "noise_enhancement")
#: Chapters without claims of their own about SGD.
APPENDIX_CHAPTERS = ("reproducing", "claims_report")
#: A claim is flagged when P(held this rarely | its expected rate) is below this. With about
#: a hundred claims, 5% would flag one or two claims per report by chance alone.
FLAG_P = 0.01
#: Claims of a toy chapter that judge its committed network runs ("On a network" sections).
#: Those runs take their seeds from the chapter's ``net_seed``, not from ``seed``, so these
#: claims are the same at every seed of the report: verdicts at the reference scale, not rates.
NETWORK_CLAIM_PREFIX = "net_"
#: Seeds the report uses by default (the tests use 0 and 1; these are unseen by them).
DEFAULT_SEEDS = (10, 11, 12, 13, 14)


def results_dir() -> Path:
    return repo_root() / "results" / "claims_report"


def toy_chapters() -> list[str]:
    return [c for c in available_chapters() if c in TOY_CHAPTERS]


def network_chapters() -> list[str]:
    """Every available chapter of the book that is neither a toy chapter nor an appendix:
    a network chapter added to CHAPTER_ORDER is picked up without editing this module."""
    return [c for c in available_chapters()
            if c not in TOY_CHAPTERS and c not in APPENDIX_CHAPTERS]


def run_path(chapter: str, seed: int | None) -> Path:
    name = "reference.json" if seed is None else f"seed{seed}.json"
    return results_dir() / chapter / name


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_one(chapter: str, seed: int | None, fidelity: str = "default") -> Path:
    """Run one chapter through the CLI and store its claims with provenance.

    ``seed`` None runs the chapter with its own seed (network chapters). Raises
    RuntimeError with the CLI's message if the chapter fails; nothing is written then.
    """
    cmd = [sys.executable, "-m", "sgdtemp", "run", chapter, "--fidelity", fidelity,
           "--no-progress"]
    if seed is not None:
        cmd += ["-p", "seed", str(seed)]
    with tempfile.TemporaryDirectory(prefix="sgdtemp-report-") as tmp:
        started = time.perf_counter()
        r = subprocess.run(cmd + ["--out", tmp], capture_output=True, text=True,
                           cwd=repo_root())
        wall = time.perf_counter() - started
        claims_file = Path(tmp) / "claims.json"
        if r.returncode != 0 or not claims_file.exists():
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError(f"{chapter} (seed {seed}) failed: {tail[0]}")
        claims = json.loads(claims_file.read_text())
    record = {
        "chapter": chapter, "seed": seed, "fidelity": fidelity,
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--", "book", "src")),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wall_time_s": round(wall, 1), "command": " ".join(cmd[1:] + ["--out", "DIR"]),
        "claims": claims,
    }
    return atomic_write_json(run_path(chapter, seed), record)


def missing(seeds, chapters=None) -> list[tuple[str, int | None]]:
    """The (chapter, seed) pairs not yet stored (network chapters: seed None)."""
    toy = toy_chapters() if chapters is None else [c for c in chapters if c in TOY_CHAPTERS]
    net = network_chapters() if chapters is None else [c for c in chapters
                                                       if c in network_chapters()]
    todo = [(c, s) for c in toy for s in seeds if not run_path(c, s).exists()]
    return todo + [(c, None) for c in net if not run_path(c, None).exists()]


def compute(seeds=DEFAULT_SEEDS, chapters=None, fidelity: str = "default",
            log=print) -> list[Path]:
    """Run every missing (chapter, seed) pair, one at a time; return the files written."""
    seeds = [int(s) for s in seeds]
    if chapters is not None:
        unknown = [c for c in chapters if c not in toy_chapters() + network_chapters()]
        if unknown:
            raise ParameterError(
                f"chapters must be among {', '.join(toy_chapters() + network_chapters())}; "
                f"got {', '.join(unknown)}.")
    written, failures = [], []
    todo = missing(seeds, chapters)
    for i, (c, s) in enumerate(todo, 1):
        log(f"[{i}/{len(todo)}] {c} seed {s if s is not None else '(reference)'}")
        try:
            written.append(run_one(c, s, fidelity))
        except RuntimeError as e:  # keep going: the other pairs are independent
            log(f"  {e}")
            failures.append(str(e))
    if failures:
        raise RuntimeError(f"{len(failures)} of {len(todo)} runs failed; first: {failures[0]}")
    return written


# ------------------------------------------------------------------ reading back


@dataclass
class ClaimRate:
    """One claim of one toy chapter over its stored seeds."""

    chapter: str
    id: str
    kind: str
    n: int
    n_hold: int
    expected_rate: float | None
    failed_seeds: list

    @property
    def rate(self) -> float:
        return self.n_hold / self.n

    @property
    def p_value(self) -> float | None:
        """P(holding this rarely) under the expected rate (one-sided binomial)."""
        if self.expected_rate is None:
            return None
        return binomial_below(self.n_hold, self.n, self.expected_rate)

    def flagged(self, flag_p: float = FLAG_P) -> bool:
        """Held significantly less often than expected: binomial p-value below ``flag_p``."""
        p = self.p_value
        return p is not None and p < flag_p


def load_runs(chapter: str) -> list[dict]:
    """Every stored seed run of a chapter, in seed order."""
    d = results_dir() / chapter
    runs = [json.loads(p.read_text()) for p in d.glob("seed*.json")]
    return sorted(runs, key=lambda r: r["seed"])


def load_reference(chapter: str) -> dict | None:
    p = run_path(chapter, None)
    return json.loads(p.read_text()) if p.exists() else None


def network_verdicts(chapter: str) -> list[dict] | None:
    """The chapter's claims at the reference scale: all claims of a network chapter's
    reference run; a toy chapter's ``net_`` claims, from its stored run with the highest
    seed (every seed reads the same committed network runs). None when nothing is stored."""
    if chapter not in TOY_CHAPTERS:
        ref = load_reference(chapter)
        return None if ref is None else ref["claims"]
    runs = load_runs(chapter)
    if not runs:
        return None
    return [c for c in runs[-1]["claims"] if c["id"].startswith(NETWORK_CLAIM_PREFIX)]


def claim_rates(chapter: str) -> list[ClaimRate]:
    """Per claim id (in the chapter's order): how often it held over the stored seeds, and
    its expected rate (the mean of the runs' stated rates; None if none states one)."""
    order, table = [], {}
    for run in load_runs(chapter):
        for c in run["claims"]:
            if c["id"].startswith(NETWORK_CLAIM_PREFIX):
                continue  # a reference verdict (see network_verdicts), not a rate over seeds
            if c["id"] not in table:
                order.append(c["id"])
                table[c["id"]] = []
            table[c["id"]].append((run["seed"], c))
    out = []
    for cid in order:
        entries = table[cid]
        rates = [c.get("expected_rate") for _, c in entries if c.get("expected_rate") is not None]
        out.append(ClaimRate(
            chapter=chapter, id=cid, kind=entries[0][1].get("kind", "statistical"),
            n=len(entries), n_hold=sum(bool(c["holds"]) for _, c in entries),
            expected_rate=(sum(rates) / len(rates)) if rates else None,
            failed_seeds=[s for s, c in entries if not c["holds"]]))
    return out


def verdict_counts_by_chapter(chapters: list[str]) -> dict[str, dict[str, int]]:
    """Per chapter, how many claims hold, fail and are unresolved: a toy chapter's claims
    over every stored seed run (claim-runs), a network chapter's (and a toy chapter's
    ``net_`` claims) once, at the reference scale. Chapters with nothing stored are left out."""
    from sgdtemp.claims import verdict_of

    out: dict[str, dict[str, int]] = {}
    for ch in chapters:
        counts = {"holds": 0, "fails": 0, "unresolved": 0}
        seen = False
        if ch in TOY_CHAPTERS:
            for run in load_runs(ch):
                for c in run["claims"]:
                    if not c["id"].startswith(NETWORK_CLAIM_PREFIX):
                        counts[verdict_of(c)] += 1
                        seen = True
        for c in network_verdicts(ch) or []:
            counts[verdict_of(c)] += 1
            seen = True
        if seen:
            out[ch] = counts
    return out


@dataclass
class Resolution:
    """What would resolve an unresolved claim: ``factor`` (the multiple of today's seeds that
    brings its 80%-power detectable difference down to its margin or stated effect, assuming
    its standard error falls as 1/√seeds: (detectable/target)²), and ``cpu_hours`` (the extra
    CPU time at the cost of the chapter's committed runs, (factor − 1) × their CPU-hours from
    provenance: an upper estimate when the claim reads only some of the runs)."""

    chapter: str
    id: str
    detectable: float
    target: float
    factor: float
    cpu_hours: float | None


def store_cpu_hours(chapter: str) -> float | None:
    """CPU-hours of the committed runs in ``results/<chapter>``, each group counted once
    (:func:`sgdtemp.records.cpu_hours`); None without a store."""
    from sgdtemp.records import cpu_hours

    d = repo_root() / "results" / chapter
    files = list(d.glob("*.json")) if d.is_dir() else []
    if not files:
        return None
    return cpu_hours(json.loads(f.read_text()) for f in files)


def resolutions(chapters: list[str]) -> list[Resolution]:
    """Every unresolved network claim (reference scale) with the seeds factor and CPU-hours
    that would resolve it (see :class:`Resolution`). A claim without a numeric detectable
    difference and target gets factor NaN."""
    from sgdtemp.claims import verdict_of

    out = []
    for ch in chapters:
        cost = store_cpu_hours(ch)
        for c in network_verdicts(ch) or []:
            if verdict_of(c) != "unresolved":
                continue
            det = c.get("detectable")
            target = c.get("margin")
            if target is None and isinstance(c.get("predicted"), (int, float)):
                target = abs(float(c["predicted"]))
            ok = isinstance(det, (int, float)) and isinstance(target, (int, float)) and target > 0
            factor = (float(det) / float(target)) ** 2 if ok else float("nan")
            hours = (max(0.0, factor - 1) * cost) if (ok and cost is not None) else None
            out.append(Resolution(ch, c["id"], float(det) if ok else float("nan"),
                                  float(target) if ok else float("nan"), factor, hours))
    return out


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m sgdtemp claims-report",
                                description="Run every chapter's claims over seeds into "
                                f"{results_dir()} (only the missing runs).")
    p.add_argument("--seeds", nargs="+", type=int, default=list(DEFAULT_SEEDS),
                   help="seeds of the toy chapters (default: %(default)s)")
    p.add_argument("--chapters", nargs="+", default=None,
                   help="restrict to these chapters (default: all)")
    p.add_argument("--fidelity", default="default", help="fidelity of the runs")
    p.add_argument("--dry-run", action="store_true", help="list the missing runs and stop")
    args = p.parse_args(argv)
    try:
        if args.dry_run:
            for c, s in missing(args.seeds, args.chapters):
                print(c, s if s is not None else "reference")
            return 0
        compute(args.seeds, args.chapters, args.fidelity)
    except (ParameterError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ParameterError) else 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
