"""Run records as arrays (sgdtemp.records)."""

import math

import numpy as np
import pytest

from sgdtemp.records import Glue, cpu_hours, curves, metric


def rec(acc, diverged=False, lr=0.1, top=None):
    return {"config": {"lr": lr}, "diverged": diverged, "curves": {"test_acc": acc},
            "curvature": None if top is None else {"top_eigenvalue": top},
            "noise_scale": {"b_simple": [10.0, 20.0]}}


def test_metric_final_window_config_and_end_measurements():
    rs = [rec([0.1, 0.5, 0.7]), rec([0.2, 0.4], diverged=True, lr=0.2, top=3.0)]
    assert metric(rs, "test_acc").tolist()[0] == 0.7 and math.isnan(metric(rs, "test_acc")[1])
    assert metric(rs, "test_acc", diverged="keep").tolist() == [0.7, 0.4]
    assert metric(rs, "test_acc", window=2)[0] == pytest.approx(0.6)
    assert metric(rs, "config.lr").tolist() == [0.1, 0.2]
    top = metric(rs, "curvature.top_eigenvalue")
    assert math.isnan(top[0]) and top[1] == 3.0
    assert metric(rs, "noise_scale.b_simple").tolist() == [20.0, 20.0]
    c = curves(rs, "test_acc")
    assert c.shape == (2, 3) and math.isnan(c[1, 2])
    with pytest.raises(ValueError, match="^diverged must be"):
        metric(rs, "test_acc", diverged="drop")


def test_cpu_hours_counts_a_group_once():
    runs = [{"provenance": {"cpu_time_s": 3600.0, "group_size": 4}} for _ in range(4)]
    runs.append({"provenance": {"cpu_time_s": 1800.0}})
    assert cpu_hours(runs) == pytest.approx(1.5)


def test_glue_refuses_bad_values():
    g = Glue("x")
    with pytest.raises(ValueError, match="x_bad is nan"):
        g("bad", float("nan"))
    with pytest.raises(TypeError):
        g("b", True)
    with pytest.raises(ValueError, match="^prefix"):
        Glue("a-b")


def test_verdict_word_is_what_the_prose_says():
    from sgdtemp.records import verdict_word

    assert [verdict_word(v) for v in ("holds", "fails", "unresolved")] == \
        ["holds", "fails", "is unresolved"]
    with pytest.raises(KeyError):
        verdict_word("maybe")
