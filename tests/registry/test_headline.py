"""The models page's headline card (#27 item 4)."""

from __future__ import annotations

import pytest
from django.utils import translation

from eduplatform.registry.headline import headline
from eduplatform.registry.models import ModelVersion
from tests.factories import UserFactory
from tests.registry.test_models_page import client_for, version

pytestmark = pytest.mark.django_db
Status = ModelVersion.Status

REPORT = {
    "variants": [
        {"name": "fp32", "bytes": 71000, "latency_ms_p50": 2.0},
        {"name": "structured+quantized", "bytes": 10000, "latency_ms_p50": 1.0},
    ],
    "chosen": "structured+quantized",
}
METRICS = {
    "score": 0.7550,
    "auc_mean_cutoffs": 0.7443,
    "peer": {"name": "tuned HGB", "score": 0.7312},
    "ece": 0.021,
}


def _served(**fields) -> ModelVersion:
    row = version("churn", 1, Status.ACTIVE, **fields)
    row.refresh_from_db()
    return row


def test_headline_answers_is_it_good() -> None:
    row = _served(metrics=METRICS, compression_report=REPORT, served_variant="structured+quantized")
    with translation.override("en"):
        lines = headline(row, "auc")
    assert lines[0] == "AUC 0.744 on the latest validation runs; tuned HGB 0.731"
    assert lines[1] == "calibrated (ECE 0.021)"
    assert lines[2] == "served variant structured+quantized: 7.1x smaller, 2.0x faster"
    assert lines[3].startswith("trained ")


def test_headline_leaves_out_what_a_version_does_not_store() -> None:
    row = _served(metrics={"score": 0.5, "ece": 0.2}, served_variant="fp32")
    with translation.override("en"):
        lines = headline(row, "ndcg@10")
    assert lines[0].endswith("0.500 on the latest validation runs")
    assert lines[1] == "probabilities off by 0.200 on average (ECE)"
    assert len(lines) == 3  # no peer, no compression line; trained
    assert headline(None, "auc") == []


def test_models_page_shows_the_card_and_folds_the_raw_metrics() -> None:
    _served(metrics=METRICS, compression_report=REPORT, served_variant="structured+quantized")
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    html = client_for(admin).get("/models/").content.decode()
    card = html.index("data-headline")
    assert html.index("tuned HGB 0.731", card) < html.index("data-raw-metrics")
    assert '<details class="raw-metrics"' in html


def test_models_page_folds_the_compression_policy_settings() -> None:
    """#27 item 4: the compression report's settings (the policy's choice and the like)
    sit in a closed details block under the variants table, not inline. Killed mutant:
    the <details> wrapper removed."""
    _served(metrics=METRICS, compression_report=REPORT, served_variant="structured+quantized")
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    html = client_for(admin).get("/models/").content.decode()
    settings_block = html.split("data-report-settings", 1)[1].split("</details>", 1)[0]
    assert "Selection policy and report settings" in settings_block
    assert "structured+quantized" in settings_block  # the report's "chosen"
    tag = html[html.rindex("<details", 0, html.index("data-report-settings")) :].split(">", 1)[0]
    assert " open" not in tag  # collapsed until asked for


def test_band_reports_are_at_each_bands_threshold() -> None:
    """#27 item 4: churn stores precision / recall / F1 at the high band's threshold
    (`report`) and at the medium band's (`report_medium`). Killed mutant: the medium
    report computed at the high threshold."""
    from churn.services import band_reports

    labels = [1, 1, 0, 1, 0, 0, 0, 0]
    probs = [0.9, 0.5, 0.45, 0.3, 0.2, 0.1, 0.05, 0.02]
    out = band_reports(labels, probs, (0.25, 0.6))
    assert out["band_thresholds"] == {"medium": 0.25, "high": 0.6}
    high, medium = out["report"], out["report_medium"]
    assert (high["threshold"], medium["threshold"]) == (0.6, 0.25)
    # high: 1 flagged, right; medium: 4 flagged (0.9, 0.5, 0.45, 0.3), 3 right
    assert (high["precision"], high["recall"]) == pytest.approx((1.0, 1 / 3))
    assert (medium["precision"], medium["recall"]) == pytest.approx((0.75, 1.0))
    assert medium["f1"] == pytest.approx(2 * 0.75 / 1.75)


BANDS = {
    "band_thresholds": {"medium": 0.12, "high": 0.31},
    "report": {"threshold": 0.31, "precision": 0.45, "recall": 0.3, "f1": 0.36},
    "report_medium": {"threshold": 0.12, "precision": 0.25, "recall": 0.7, "f1": 0.368},
}


def test_headline_reports_precision_recall_f1_at_both_bands() -> None:
    """Killed mutant: `_bands` returns the high band only."""
    row = _served(metrics={**METRICS, **BANDS}, served_variant="fp32")
    with translation.override("en"):
        lines = headline(row, "auc")
    assert lines[2] == ("at the high band's threshold (0.31): precision 0.45, recall 0.30, F1 0.36")
    assert lines[3] == (
        "at the medium band's threshold (0.12): precision 0.25, recall 0.70, F1 0.37"
    )
    assert lines[4].startswith("trained ")


def test_models_page_shows_medium_band_figures() -> None:
    """The card and the raw metrics both carry the medium band's figures. Killed mutant:
    the raw list skips `report_medium`."""
    _served(metrics={**METRICS, **BANDS}, served_variant="fp32")
    admin = UserFactory(username="root", is_superuser=True, is_staff=True)
    html = client_for(admin).get("/models/").content.decode()
    card = html.index("data-headline")
    assert html.index("at the medium band&#x27;s threshold (0.12)", card) < html.index(
        "data-raw-metrics"
    )
    raw = html[html.index("data-raw-metrics") :]
    assert "validation precision, medium band" in raw
