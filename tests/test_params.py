"""Parameter validation: every bad value is one sentence naming the parameter."""

import pytest

from sgdtemp.params import (Param, ParameterError, ParameterSet, in_range, list_of, one_of,
                            positive, positive_int, resolve_fidelity)

PS = ParameterSet(
    chapter="demo",
    params=[
        Param("lr", {"smoke": 0.1, "default": 0.05, "paper": 0.01}, positive, "learning rate"),
        Param("batch_size", 10, positive_int, "batch size"),
        Param("mode", "a", one_of("a", "b"), "mode"),
        Param("ts", [1.0, 2.0], list_of(in_range(0, 5)), "temperatures"),
    ],
    rules=[lambda c: None if c.batch_size <= 100 else
           f"batch_size must be at most n_train (100); got {c.batch_size}."],
)


def test_presets_follow_fidelity():
    assert PS.resolve(fidelity="smoke").lr == 0.1
    assert PS.resolve(fidelity="paper").lr == 0.01
    assert PS.resolve(fidelity="smoke", lr=0.3).lr == 0.3


def test_fidelity_from_environment(monkeypatch):
    monkeypatch.setenv("SGDTEMP_FIDELITY", "smoke")
    assert PS.resolve().fidelity == "smoke"
    assert PS.resolve(fidelity="paper").fidelity == "paper"  # explicit beats environment
    monkeypatch.delenv("SGDTEMP_FIDELITY")
    assert resolve_fidelity(None) == "default"


@pytest.mark.parametrize("kw, name", [
    ({"lr": -1}, "lr"), ({"lr": 0}, "lr"), ({"lr": float("nan")}, "lr"), ({"lr": "x"}, "lr"),
    ({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"),
    ({"batch_size": True}, "batch_size"), ({"batch_size": 101}, "batch_size"),
    ({"mode": "c"}, "mode"), ({"ts": [1, 9]}, "ts"), ({"ts": []}, "ts"),
    ({"seed": -3}, "seed"), ({"fidelity": "fast"}, "fidelity"), ({"nope": 1}, "nope"),
])
def test_bad_values_are_one_sentence_naming_the_parameter(kw, name):
    with pytest.raises(ParameterError) as e:
        PS.resolve(**kw)
    msg = str(e.value)
    assert name in msg
    assert msg.endswith(".") and "\n" not in msg
