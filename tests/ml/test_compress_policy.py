"""The compression kit's selection policy: which variant is served, and why (the rows are
built by hand; the variants themselves are tested in test_compress.py)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from eduplatform.ml import compress as C
from eduplatform.ml.compress.pipeline import VariantRow


def timed(
    name, nbytes, *, b1=1.0, b256=1.0, loss=0.0, quality=None, quality_ok=True, latency_ok=True
):
    return VariantRow(
        name=name,
        artifact_bytes=nbytes,
        size_ratio=1000 / nbytes,
        params=1,
        nonzero_params=1,
        p50_b1_ms=b1,
        p99_b1_ms=b1,
        p50_b256_ms=b256,
        p99_b256_ms=b256,
        speedup_b1=1 / b1,
        speedup_b256=1 / b256,
        quality=0.8 - loss if quality is None else quality,
        quality_loss=loss,
        quality_ok=quality_ok,
        latency_ok=latency_ok,
        build_seconds=0.0,
    )


def row(name, nbytes, quality, p50=1.0, base_quality=0.80):
    policy = C.SelectionPolicy(tolerance=0.005)
    loss = policy.quality_loss(base_quality, quality)
    return timed(
        name,
        nbytes,
        b1=p50,
        b256=p50,
        loss=loss,
        quality=quality,
        quality_ok=loss <= policy.tolerance,
        latency_ok=p50 <= 1.25,
    )


ROWS = [
    row("fp32", 1000, 0.800),
    row("quantized", 260, 0.799),
    row("structured", 500, 0.801, p50=0.5),
    row("pruned+quantized", 100, 0.790),  # smallest, but loses 0.01 AUC
    row("structured+quantized", 130, 0.796),  # smallest within tolerance
    row("low-rank+quantized", 140, 0.797, p50=0.6),  # a little larger, much faster
    row("low-rank", 90, 0.800, p50=2.0),  # smaller still and within tolerance, too slow
]


def test_policy_serves_the_smallest_and_fastest_variant_within_tolerance():
    name, reason = C.select_variant(ROWS, C.SelectionPolicy.churn())
    assert name == "low-rank+quantized"  # ln(1000/140) + ln(1/0.6) beats ln(1000/130)
    assert "low-rank+quantized" not in reason or "score" in reason
    by_size = C.SelectionPolicy.churn(objective="size", size_slack=0.0)
    assert C.select_variant(ROWS, by_size)[0] == "structured+quantized"
    slack = C.SelectionPolicy.churn(objective="size", size_slack=0.10)
    assert C.select_variant(ROWS, slack)[0] == "low-rank+quantized"
    assert C.select_variant(ROWS, C.SelectionPolicy.churn(objective="speed"))[0] == "structured"
    only = C.SelectionPolicy.churn(candidates=("quantized",))
    assert C.select_variant(ROWS, only)[0] == "quantized"
    no_speed = C.SelectionPolicy.churn(speed_weight=0.0)
    assert C.select_variant(ROWS, no_speed)[0] == "structured+quantized"


def test_policy_falls_back_to_fp32_when_nothing_qualifies():
    rows = [row("fp32", 1000, 0.80), row("quantized", 260, 0.70), row("pruned", 300, 0.79)]
    name, reason = C.select_variant(rows, C.SelectionPolicy.churn())
    assert name == "fp32"
    assert "quality" in reason


def test_relative_tolerance_for_ndcg():
    policy = C.SelectionPolicy.recommender()
    assert policy.relative and policy.tolerance == 0.02
    assert policy.quality_loss(0.40, 0.396) == pytest.approx(0.01)
    assert policy.quality_loss(0.40, 0.39) == pytest.approx(0.025)
    assert C.SelectionPolicy.from_dict(policy.to_dict()) == policy


def test_balanced_score_is_log_size_plus_log_mean_speedup():
    policy = C.SelectionPolicy(size_weight=2.0, speed_weight=0.5)
    r = timed("quantized", 250, b1=0.5, b256=2.0)  # 4x smaller, speedups 2 and 0.5
    assert policy.score(r) == pytest.approx(2.0 * np.log(4.0) + 0.5 * np.log(1.0))
    r = timed("quantized", 500, b1=0.25, b256=1.0)  # 2x smaller, speedups 4 and 1
    assert policy.score(r) == pytest.approx(2.0 * np.log(2.0) + 0.5 * np.log(2.0))
    # A zero ratio or speedup (a failed timing) is floored, not a math error.
    broken = dataclasses.replace(r, size_ratio=0.0, speedup_b1=0.0, speedup_b256=0.0)
    assert policy.score(broken) == pytest.approx(2.5 * np.log(1e-9))


def test_quality_loss_absolute_relative_and_undefined():
    absolute = C.SelectionPolicy()
    assert absolute.quality_loss(0.80, 0.75) == pytest.approx(0.05)
    assert absolute.quality_loss(0.80, 0.85) == pytest.approx(-0.05)  # a gain
    relative = C.SelectionPolicy(relative=True)
    assert relative.quality_loss(-0.5, -0.6) == pytest.approx(0.2)  # against |base|
    assert relative.quality_loss(0.0, 0.0) == 0.0
    assert relative.quality_loss(0.0, 0.1) == 0.0
    assert relative.quality_loss(0.0, -0.1) == math.inf
    for policy in (absolute, relative):
        assert policy.quality_loss(math.nan, 0.5) == math.inf
        assert policy.quality_loss(0.5, math.nan) == math.inf
        assert policy.quality_loss(0.5, -math.inf) == math.inf


def test_policy_presets_and_dict_round_trip():
    churn = C.SelectionPolicy.churn()
    assert (churn.metric, churn.tolerance, churn.relative) == ("auc", 0.005, False)
    rec = C.SelectionPolicy.recommender(tolerance=0.05)
    assert (rec.metric, rec.tolerance, rec.relative) == ("ndcg@10", 0.05, True)
    assert C.SelectionPolicy.churn(metric="pr_auc").metric == "pr_auc"
    policy = C.SelectionPolicy.churn(candidates=("quantized", "pruned"), objective="size")
    d = policy.to_dict()
    assert d["candidates"] == ["quantized", "pruned"] and d["objective"] == "size"
    back = C.SelectionPolicy.from_dict({**json.loads(json.dumps(d)), "unknown_key": 1})
    assert back == policy and back.candidates == ("quantized", "pruned")
    assert C.SelectionPolicy.from_dict({"tolerance": 0.1}).candidates is None
    assert C.SelectionPolicy().to_dict()["candidates"] is None


def test_fallback_reason_names_each_variant_and_its_failure():
    rows = [
        timed("fp32", 1000),
        timed("quantized", 250, loss=0.1, quality_ok=False),
        timed("pruned", 300, b1=9.0, latency_ok=False),
        timed("low-rank", 400, loss=0.1, quality_ok=False, latency_ok=False),
    ]
    name, reason = C.select_variant(rows, C.SelectionPolicy())
    assert name == "fp32"
    assert reason == (
        "no variant within tolerance (quantized: quality; pruned: latency; "
        "low-rank: quality and latency); serving fp32"
    )
    assert C.select_variant([timed("fp32", 1000)], C.SelectionPolicy()) == (
        "fp32",
        "no variant within tolerance (none built); serving fp32",
    )
    # fp32 itself is never a candidate, eligible or not.
    only_base = [timed("fp32", 10)]
    assert C.select_variant(only_base, C.SelectionPolicy(objective="size"))[0] == "fp32"


def test_candidates_restrict_the_choice():
    rows = [timed("fp32", 1000), timed("quantized", 250), timed("pruned", 100)]
    assert C.select_variant(rows, C.SelectionPolicy())[0] == "pruned"
    only = C.SelectionPolicy(candidates=("quantized",))
    assert C.select_variant(rows, only)[0] == "quantized"
    none_built = C.SelectionPolicy(candidates=("low-rank",))
    assert C.select_variant(rows, none_built) == (
        "fp32",
        "no variant within tolerance (none built); serving fp32",
    )


def test_size_objective_slack_and_tie_breaks():
    rows = [
        timed("fp32", 1000),
        timed("quantized", 100, b256=2.0),
        timed("pruned", 110, b256=1.0),  # 10% larger, faster at batch 256
        timed("low-rank", 111, b256=0.1),  # just outside the slack
    ]
    assert C.select_variant(rows, C.SelectionPolicy(objective="size", size_slack=0.0))[0] == (
        "quantized"
    )
    name, reason = C.select_variant(rows, C.SelectionPolicy(objective="size"))
    assert name == "pruned"
    assert reason.startswith("smallest qualifying (quantized, pruned), then fastest: ")
    # Equal at batch 256: batch 1 decides, then the size.
    ties = [
        timed("fp32", 1000),
        timed("quantized", 100, b1=2.0),
        timed("pruned", 105, b1=1.0),
        timed("structured", 104, b1=1.0),
    ]
    assert C.select_variant(ties, C.SelectionPolicy(objective="size"))[0] == "structured"


def test_speed_objective_and_tie_breaks():
    rows = [
        timed("fp32", 1000),
        timed("quantized", 100, b256=0.5, b1=0.9),
        timed("pruned", 200, b256=0.5, b1=0.8),
        timed("structured", 150, b256=0.5, b1=0.8),
        timed("low-rank", 50, b256=0.6, b1=0.1),
    ]
    name, reason = C.select_variant(rows, C.SelectionPolicy(objective="speed"))
    assert name == "structured"  # batch 256, then batch 1, then bytes
    assert reason.startswith("fastest qualifying at batch 256: ")


def test_balanced_ties_go_to_the_smaller_artifact_and_reason_gives_the_figures():
    rows = [
        timed("fp32", 1000),
        # same score: 2x smaller at the same speed vs 1x smaller and 2x faster at both sizes
        timed("structured", 1000, b1=0.5, b256=0.5),
        timed("quantized", 500),
    ]
    name, reason = C.select_variant(rows, C.SelectionPolicy(tolerance=0.01))
    assert name == "quantized"
    assert reason == (
        "best size x speed score among qualifying variants: 2.0x smaller, 1.00x / 1.00x "
        "as fast at batch 1 / 256, quality loss +0.0000 (tolerance 0.01)"
    )
    rel = C.SelectionPolicy(tolerance=0.02, relative=True)
    slower = [timed("fp32", 1000), timed("pruned", 400, b1=1.25, b256=0.8, loss=0.0123)]
    assert C.select_variant(slower, rel)[1] == (
        "best size x speed score among qualifying variants: 2.5x smaller, 0.80x / 1.25x "
        "as fast at batch 1 / 256, quality loss +0.0123 (tolerance 0.02 relative)"
    )


def test_unknown_objective_is_refused():
    rows = [timed("fp32", 1000), timed("quantized", 250)]
    with pytest.raises(ValueError, match="unknown objective 'smallest'"):
        C.select_variant(rows, C.SelectionPolicy(objective="smallest"))


def test_forcing_a_variant_keeps_the_policy_choice_in_the_report():
    rows = [timed("fp32", 1000), timed("quantized", 250)]
    result = C.CompressionResult(
        rows=rows,
        chosen="quantized",
        reason="policy says so",
        policy=C.SelectionPolicy(),
        settings=C.CompressionSettings(),
    )
    assert result.row("fp32") is rows[0]
    with pytest.raises(KeyError):
        result.row("pruned")
    with pytest.raises(KeyError):
        result.force("pruned", "chosen elsewhere")
    assert result.chosen == "quantized" and "policy_choice" not in result.extra
    result.force("fp32", "recipe chosen on validation data")
    assert result.chosen == "fp32"
    assert result.reason == (
        "recipe chosen on validation data; the policy alone would serve quantized"
    )
    assert result.extra["policy_choice"] == {"chosen": "quantized", "reason": "policy says so"}
    assert result.to_dict()["extra"]["policy_choice"]["chosen"] == "quantized"
