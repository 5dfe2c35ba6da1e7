"""The results store's key covers every training option that can change a result.

A key that ignores a result-changing option serves one run's record for another: the
bug is silent (the book builds, the numbers are wrong). So the property is checked over
*every* option of :data:`sgdtemp.train.CONFIG_KEYS`, one at a time, including options
added later: for each, a valid value different from its default is derived (a small
table, else generically from the default and its check), and the key must change. An
option for which no such value can be derived fails loudly instead of being skipped.

The location-only options are listed here, by this test, not read from
:data:`sgdtemp.store.LOCATION_KEYS`: moving a result-changing option into the library's
list of ignored entries must make this test fail, not shrink the set it checks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from sgdtemp import train
from sgdtemp.store import LOCATION_KEYS, ResultsStore, config_key
from sgdtemp.train import CONFIG_KEYS, training_config

REPO = Path(__file__).resolve().parents[1]

#: Options that say where inputs are, not what is computed (the only ones a key may ignore).
LOCATION_ONLY = {"data_dir": "/some/other/copy/of/the/data"}

#: Options whose alternative value cannot be derived generically (none today). An entry is
#: a list of candidates; the first valid one that changes the completed config is used.
ALTERNATIVES: dict[str, list[Any]] = {
    "n_train": [1000],  # must stay ≥ batch_size (128) to be valid
}

#: Options that are valid only alongside another option's non-default value: the base
#: configuration for checking them carries it (in both the base and the changed config).
CONTEXT: dict[str, dict[str, Any]] = {
    "depth": {"model": "mlp"},  # hidden layers exist for the mlp only
}


def _choices(check: Any, depth: int = 0) -> Iterator[Any]:
    """The allowed values of a ``params.one_of`` check (also inside ``optional``), read
    from its closure; nothing for other checks."""
    if depth > 3:
        return
    for cell in getattr(check, "__closure__", None) or ():
        v = cell.cell_contents
        if isinstance(v, tuple):
            yield from v
        elif callable(v):
            yield from _choices(v, depth + 1)


def _candidates(name: str, default: Any, check: Any) -> Iterator[Any]:
    yield from ALTERNATIVES.get(name, ())
    yield from _choices(check)
    if isinstance(default, bool):
        yield not default
    elif isinstance(default, (int, float)):
        yield from (default * 2, default + 1, default / 2, 0.5, 1, 3)
    elif default is None:
        yield from (False, True, 1, 2, 16, 64, 1000, 0.5, 3.0)


def base_config(name: str | None = None) -> dict:
    """The default configuration with every option explicit (so that changing one option,
    e.g. ``dataset``, does not change another's resolved default, e.g. ``augment``), with
    the :data:`CONTEXT` that option ``name`` needs."""
    return training_config(**CONTEXT.get(name, {}))


def alternative(name: str) -> Any:
    """A value of option ``name`` that is valid and changes the completed configuration."""
    default, check, _ = CONFIG_KEYS[name]
    base = base_config(name)
    tried = []
    for v in _candidates(name, default, check):
        tried.append(v)
        try:
            cfg = training_config(**{**base, name: v})
        except ValueError:
            continue
        if cfg[name] != base[name]:
            return v
    pytest.fail(f"cannot derive a valid non-default value for training option {name!r} "
                f"(tried {tried!r}): add one to ALTERNATIVES in {Path(__file__).name}, so that "
                f"its effect on the store key is checked.")


RESULT_CHANGING = [k for k in CONFIG_KEYS if k not in LOCATION_ONLY]


def test_location_options_are_training_options_and_the_only_ones_ignored():
    assert set(LOCATION_ONLY) <= set(CONFIG_KEYS)
    # The library may ignore no more than what this test calls location-only.
    assert set(LOCATION_KEYS) <= set(LOCATION_ONLY)


@pytest.mark.parametrize("name", RESULT_CHANGING)
def test_changing_any_result_changing_option_changes_the_key(name):
    base = base_config(name)
    changed = training_config(**{**base, name: alternative(name)})
    assert {k for k in base if base[k] != changed[k]} == {name}
    assert config_key(changed) != config_key(base), (
        f"the store key ignores {name!r}: runs differing only in it would share one result")


def off_default_with(name: str) -> dict:
    """Options set to their alternatives, as many as stay valid together, ``name`` first
    (some options exclude others, e.g. noise enhancement and a schedule)."""
    alts: dict[str, Any] = {name: alternative(name)}
    for k in RESULT_CHANGING:
        if k == name or name in CONTEXT.get(k, {}):  # k would not stay valid with name back
            continue
        try:
            training_config(**{**alts, k: alternative(k)})
        except ValueError:
            continue
        alts[k] = alternative(k)
    return alts


@pytest.mark.parametrize("name", RESULT_CHANGING)
def test_returning_an_option_to_its_default_changes_the_key(name):
    # From a configuration where every option is off its default, put one back: the key
    # must change too (a key that dropped options at some value would miss this).
    base = base_config()
    alts = off_default_with(name)
    everything = training_config(**alts)
    one_back = training_config(**{**alts, name: base[name]})
    assert one_back[name] != everything[name]
    assert config_key(one_back) != config_key(everything)


def test_single_option_changes_give_distinct_keys():
    base = base_config()
    keys = {name: config_key(training_config(**{**base_config(name), name: alternative(name)}))
            for name in RESULT_CHANGING}
    keys["(defaults)"] = config_key(base)
    assert len(set(keys.values())) == len(keys)


@pytest.mark.parametrize("name", sorted(LOCATION_ONLY))
def test_location_options_do_not_change_the_key(name, tmp_path):
    base = base_config()
    moved = training_config(**{**base, name: LOCATION_ONLY[name]})
    assert moved[name] != base[name]
    assert config_key(moved) == config_key(base)
    # ... so a result stored from one copy of the data is found from another.
    s = ResultsStore(tmp_path)
    s.put(base, {"final": {"test_acc": 0.5}})
    assert s.get(moved) == {"final": {"test_acc": 0.5}}


def test_the_key_is_a_function_of_the_completed_config_only():
    # Explicit defaults and omitted ones are the same run.
    explicit = training_config(**{k: d for k, (d, _, _) in CONFIG_KEYS.items()})
    assert config_key(explicit) == config_key(training_config())


def committed_results() -> list[Path]:
    return sorted((REPO / "results").glob("*/*.json"))


@pytest.mark.skipif(not committed_results(), reason="no committed results under results/")
def test_committed_results_are_found_under_their_complete_config():
    """Every committed result is stored under the key its configuration gets today once
    completed by ``training_config``: a change of the key (or of the options) that would
    orphan the reference results, and so retrain them silently, fails here."""
    for path in committed_results():
        entry = json.loads(path.read_text())
        assert path.stem == entry["key"] == config_key(entry["config"]), path
        completed = training_config(**entry["config"])
        assert config_key(completed) == path.stem, (
            f"{path.relative_to(REPO)} is no longer found under its configuration's key")


def test_train_module_has_no_option_outside_config_keys():
    # training_config returns exactly CONFIG_KEYS: nothing keyed comes from elsewhere.
    assert list(training_config()) == list(train.CONFIG_KEYS)
