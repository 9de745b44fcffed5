"""Compression decided on signal (#23 item 4): per-unit quality gives the loss an interval."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import eduplatform.ml.compress as C


def test_interval_is_the_paired_standard_error_in_policy_terms():
    base = np.array([0.5, 0.4, 0.6, 0.5])
    values = np.array([0.4, 0.4, 0.5, 0.5])  # differences 0.1, 0, 0.1, 0
    absolute = C.SelectionPolicy(tolerance=0.01)
    se = np.std([0.1, 0, 0.1, 0], ddof=1) / 2
    assert absolute.loss_interval(base, values) == pytest.approx(1.96 * se)
    relative = C.SelectionPolicy.recommender()
    assert relative.loss_interval(base, values) == pytest.approx(1.96 * se / 0.5)
    # One figure (AUC) or mismatched units: no interval, the tolerance alone decides
    assert absolute.loss_interval(np.array([0.7]), np.array([0.6])) is None
    assert absolute.loss_interval(base, values[:3]) is None


def test_a_loss_inside_its_interval_qualifies_and_one_outside_does_not():
    policy = C.SelectionPolicy.recommender()  # 2% relative
    assert policy.quality_ok(0.01, None)
    assert not policy.quality_ok(0.30, None)
    assert policy.quality_ok(0.30, 0.45)  # two hits' worth of noise: no measured loss
    assert not policy.quality_ok(0.30, 0.10)  # a measured loss beyond the tolerance


class Noisy(nn.Module):
    """A stand-in network whose variants are told apart by their weights only."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(8, 16)
        self.b = nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))


def _report(evaluate):
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    settings = C.CompressionSettings(
        repeats_b1=3, repeats_b256=2, min_repeats=2, warmup=1, variants=("fp32", "structured")
    )
    return C.compress_model(
        Noisy(),
        build_base=Noisy,
        example_inputs_b1=(x[:1],),
        example_inputs_b256=(x,),
        evaluate=evaluate,
        finetune=None,
        # Latency is not what this test is about
        policy=C.SelectionPolicy.recommender(max_latency_ratio=1e9),
        settings=settings,
    )


def _per_unit(noise: float):
    """fp32 scores 0.5 on every unit; any other module 30% lower on average, with `noise`
    spread across units (a wide spread: the loss is not measured)."""
    rng = np.random.default_rng(0)
    spread = rng.normal(0.0, noise, 400)
    spread -= spread.mean()
    calls = {"n": 0}

    def evaluate(module: nn.Module) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 1:  # fp32 is scored first
            return np.full(400, 0.5)
        return 0.35 + spread

    return evaluate


def test_noise_level_loss_is_no_loss_and_a_measured_loss_is_refused():
    noisy = _report(_per_unit(noise=4.0))
    row = noisy.row("structured")
    assert row.quality_loss == pytest.approx(0.3)
    assert row.quality_interval is not None and row.quality_interval > row.quality_loss
    assert row.quality_units == 400 and row.quality_ok
    assert noisy.chosen == "structured"
    assert "(tolerance 0.02 relative; 95% interval +-" in noisy.reason
    assert noisy.reason.endswith(" over 400 units: inside it, no measured loss)")
    measured = _report(_per_unit(noise=0.01)).row("structured")
    assert measured.quality_interval is not None and measured.quality_interval < 0.01
    assert not measured.quality_ok
    report = json.loads(json.dumps(noisy.to_dict()))
    assert report["variants"][1]["quality_interval"] == pytest.approx(row.quality_interval)


def test_a_single_figure_keeps_the_tolerance_rule():
    scores = iter([0.5, 0.3])  # fp32 first, then the structured variant
    result = _report(lambda m: next(scores))
    row = result.row("structured")
    assert row.quality_interval is None and not row.quality_ok
    assert result.chosen == "fp32"


def test_interval_edges():
    """Two units already give an interval; a zero base gives an infinite relative one;
    a loss equal to the tolerance or to the interval qualifies (mutmut survivors)."""
    policy = C.SelectionPolicy.recommender()
    half = policy.loss_interval(np.array([0.2, 0.4]), np.array([0.1, 0.4]))
    assert half == pytest.approx(1.96 * np.std([0.1, 0.0], ddof=1) / np.sqrt(2) / 0.3)
    assert policy.loss_interval(np.zeros(3), np.array([0.0, 0.1, 0.0])) == float("inf")
    assert policy.quality_ok(policy.tolerance, None)
    assert policy.quality_ok(0.3, 0.3)
