"""Chapter parameters: declaration, fidelity presets and validation.

Every chapter declares its knobs once, in ``sgdtemp.presets.<chapter>``, as a
:class:`ParameterSet`. The same object validates the values a notebook's
``parameters`` cell holds and the values the CLI receives, so a bad value is
rejected with one sentence *before* any compute, wherever it comes from.

Conventions shared by all chapters:

* ``fidelity`` is one of ``smoke`` (seconds; CI), ``default`` (the book build on a
  laptop CPU) or ``paper`` (the papers' scale). ``None`` means: the environment
  variable ``SGDTEMP_FIDELITY`` if set, else ``default``.
* ``seed`` is a non-negative integer.
* A parameter whose value is ``None`` takes its preset for the fidelity.
* Conventional names: ``lr`` (learning rate η), ``batch_size`` (B), ``temperatures``
  (T = η/B), ``n_replicas``, ``n_steps``, ``epochs``, ``data_dir``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

FIDELITIES = ("smoke", "default", "paper")
FIDELITY_ENV = "SGDTEMP_FIDELITY"


class ParameterError(ValueError):
    """A parameter value is not allowed. The message is one sentence for the reader."""


# ---------------------------------------------------------------- checks
# A check takes the value and returns None when it is fine, or a phrase saying
# what is allowed ("a positive number"), used to build the error sentence.
Check = Callable[[Any], "str | None"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def positive(v: Any) -> str | None:
    return None if _is_number(v) and v > 0 else "a positive finite number"


def non_negative(v: Any) -> str | None:
    return None if _is_number(v) and v >= 0 else "a non-negative finite number"


def positive_int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v > 0 else "a positive integer"


def non_negative_int(v: Any) -> str | None:
    return None if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else "a non-negative integer"


def in_range(lo: float, hi: float, *, integer: bool = False) -> Check:
    """Closed interval [lo, hi]; integers only if ``integer``."""

    def check(v: Any) -> str | None:
        kind = "an integer" if integer else "a number"
        ok = _is_number(v) and lo <= v <= hi and (not integer or isinstance(v, int))
        return None if ok else f"{kind} between {lo:g} and {hi:g}"

    return check


def one_of(*choices: Any) -> Check:
    def check(v: Any) -> str | None:
        return None if v in choices else "one of " + ", ".join(repr(c) for c in choices)

    return check


def list_of(item: Check, *, min_len: int = 1) -> Check:
    """A list or tuple of at least ``min_len`` items, each passing ``item``."""

    def check(v: Any) -> str | None:
        if not isinstance(v, (list, tuple)):
            return f"a list of at least {min_len} values"
        # A bad value first: it is the likelier mistake, and a shorter list may be fine.
        for x in v:
            why = item(x)
            if why is not None:
                return f"a list whose values are each {why} ({x!r} is not)"
        if len(v) < min_len:
            return f"a list of at least {min_len} values (this one has {len(v)})"
        return None

    return check


def optional(check: Check) -> Check:
    """``None`` or a value passing ``check`` (for parameters with no preset)."""

    def wrapped(v: Any) -> str | None:
        return None if v is None else check(v)

    return wrapped


def text(v: Any) -> str | None:
    return None if isinstance(v, str) and v else "a non-empty string"


# ---------------------------------------------------------------- declarations
@dataclass(frozen=True)
class Param:
    """One knob of a chapter.

    ``default`` is either a plain value used at every fidelity, or a mapping
    ``{"smoke": ..., "default": ..., "paper": ...}`` of presets.
    """

    name: str
    default: Any
    check: Check
    doc: str

    def preset(self, fidelity: str) -> Any:
        if isinstance(self.default, Mapping) and set(self.default) == set(FIDELITIES):
            return self.default[fidelity]
        return self.default


class Config(dict):
    """Validated chapter parameters; read them as attributes (``cfg.lr``)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def _repr_html_(self) -> str:
        """Shown when a chapter displays its resolved parameters: ``name = value`` pairs
        in one wrapping line (a dict's repr reads as code, not as a setting)."""
        import html

        items = " · ".join(f"<code>{html.escape(k)} = {html.escape(repr(v))}</code>"
                           for k, v in self.items())
        return f"<p class='sgdtemp-config'>parameters: {items}</p>"


def resolve_fidelity(fidelity: Any) -> str:
    if fidelity is None:
        fidelity = os.environ.get(FIDELITY_ENV) or "default"
    if fidelity not in FIDELITIES:
        raise ParameterError(
            f"fidelity must be one of {', '.join(FIDELITIES)}; got {fidelity!r}."
        )
    return fidelity


@dataclass
class ParameterSet:
    """All the knobs of one chapter, plus cross-parameter rules.

    ``rules`` are functions of the resolved :class:`Config` that return ``None`` or
    an error sentence (for constraints such as ``batch_size <= n_train``).
    """

    chapter: str
    params: list[Param]
    rules: list[Callable[[Config], "str | None"]] = field(default_factory=list)

    def names(self) -> list[str]:
        return ["fidelity", "seed"] + [p.name for p in self.params]

    def resolve(self, **values: Any) -> Config:
        """Validate ``values`` and fill every ``None`` with its fidelity preset.

        Raises :class:`ParameterError` naming the first bad parameter.
        """
        known = set(self.names())
        for name in values:
            if name not in known:
                raise ParameterError(
                    f"{name!r} is not a parameter of chapter {self.chapter!r}; "
                    f"allowed: {', '.join(sorted(known))}."
                )
        fidelity = resolve_fidelity(values.get("fidelity"))
        seed = values.get("seed", 0)
        if seed is None:
            seed = 0
        why = non_negative_int(seed)
        if why:
            raise ParameterError(f"seed must be {why}; got {seed!r}.")
        cfg = Config(fidelity=fidelity, seed=seed)
        for p in self.params:
            v = values.get(p.name)
            if v is None:
                v = p.preset(fidelity)
            why = p.check(v)
            if why is not None:
                raise ParameterError(f"{p.name} must be {why}; got {v!r}.")
            cfg[p.name] = v
        for rule in self.rules:
            why = rule(cfg)
            if why is not None:
                raise ParameterError(why)
        return cfg

    def describe(self) -> str:
        """One line per parameter, for ``python -m sgdtemp params CHAPTER``."""
        lines = [
            "fidelity: smoke | default | paper (None: $SGDTEMP_FIDELITY, else default)",
            "seed: non-negative integer (default 0)",
        ]
        for p in self.params:
            lines.append(f"{p.name}: {p.doc} (default {p.default!r})")
        return "\n".join(lines)
