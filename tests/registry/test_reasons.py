"""Stored English reasons (version status, compression policy) in the reader's language.

The sentences come from the code that writes them wherever that is a pure function (the
compression kit's select_variant and force), so a reworded sentence fails here instead of
silently showing in English on the Chinese page.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from django.utils import translation

from eduplatform.ml.compress.pipeline import (
    CompressionResult,
    CompressionSettings,
    SelectionPolicy,
    VariantRow,
    select_variant,
)
from eduplatform.registry import services
from eduplatform.registry.models import ModelVersion
from eduplatform.registry.reasons import (
    STAGES,
    compression_reason_text,
    stage_text,
    status_reason_text,
)
from tests.factories import UserFactory
from tests.registry.test_models_page import version

ROOT = Path(__file__).resolve().parents[2]
CHINESE = re.compile(r"[\u4e00-\u9fff]")
Status = ModelVersion.Status


def in_chinese(function, text: str) -> str:
    with translation.override("zh-hans"):
        return function(text)


def rows() -> list[VariantRow]:
    def row(name, size, p50, loss, quality_ok=True, latency_ok=True) -> VariantRow:
        return VariantRow(
            name=name,
            artifact_bytes=size,
            params=100,
            nonzero_params=100,
            p50_b1_ms=p50,
            p99_b1_ms=p50,
            p50_b256_ms=p50,
            p99_b256_ms=p50,
            quality=0.8 - loss,
            quality_loss=loss,
            size_ratio=4000 / size,
            speedup_b1=1.0 / p50,
            speedup_b256=1.0 / p50,
            quality_ok=quality_ok,
            latency_ok=latency_ok,
            build_seconds=0.1,
        )

    return [
        row("fp32", 4000, 1.0, 0.0),
        row("int8", 1000, 0.5, 0.001),
        row("pruned", 2000, 0.8, 0.002),
    ]


STATUS_REASONS = [
    # services.model_version_train's gate, as it formats it.
    (
        f"gate: {0.7101:.4f} is worse than the active model's {0.7802:.4f} by more than {0.005:g}",
        ["0.7101", "0.7802", "0.005"],
    ),
    (f"{services.WORKER_LOST}: no heartbeat for {120.0:g} s", ["120"]),
    ("abandoned: no worker finished it in time", []),
    ("time limit exceeded", []),
    ("not enough labelled learners in at least two course runs yet", []),
    ("no course run has started yet", []),
    ("no item clicks yet", []),
    ("nothing to train the ranker on yet (no positive pairs)", ["no positive pairs"]),
    ("serve_variant 'zip' was not built (built: fp32, int8)", ["'zip'", "fp32, int8"]),
]


@pytest.mark.parametrize(("reason", "kept"), STATUS_REASONS)
def test_every_status_reason_the_registry_writes_is_translated(reason, kept) -> None:
    text = in_chinese(status_reason_text, reason)
    assert text != reason and CHINESE.search(text), text
    for value in kept:
        assert value in text
    with translation.override("en-gb"):
        assert status_reason_text(reason) == reason


def test_status_reasons_written_in_the_code_are_all_in_the_table() -> None:
    # Every literal status reason in the registry's writers must be one the page knows.
    sources = [
        ROOT / "eduplatform/registry/services.py",
        ROOT / "eduplatform/registry/tasks.py",
        ROOT / "churn/services.py",
        ROOT / "recommender/services.py",
    ]
    literals = set()
    for source in sources:
        text = source.read_text()
        literals |= set(re.findall(r'status_reason="([^"{]+)"', text))
        literals |= set(re.findall(r'reason="([^"{]+)"', text))
        literals |= set(re.findall(r'TrainingRejected\("([^"{]+)"\)', text))
    assert literals, "the scan found no reason"
    for literal in literals:
        assert in_chinese(status_reason_text, literal) != literal, literal


def test_an_unknown_reason_is_shown_as_stored() -> None:
    assert in_chinese(status_reason_text, "ValueError: boom") == "ValueError: boom"
    assert in_chinese(compression_reason_text, "a newer policy's words") == "a newer policy's words"


@pytest.mark.parametrize("objective", ["size", "speed", "balanced"])
def test_the_policy_choice_is_translated_with_its_figures(objective) -> None:
    for relative in (False, True):
        policy = SelectionPolicy(metric="auc", objective=objective, relative=relative)
        _, reason = select_variant(rows(), policy)
        text = in_chinese(compression_reason_text, reason)
        assert CHINESE.search(text) and text != reason, text
        # The figures and names are the stored ones.
        for figure in re.findall(r"\d+\.\d+x|[+-]\d\.\d{4}", reason):
            assert figure.rstrip("x") in text, (figure, text)
        assert ("相对容差" in text) == relative
        assert not re.search(r"qualifying|smaller|as fast|tolerance", text), text


def test_no_eligible_variant_and_a_forced_variant_are_translated() -> None:
    failing = rows()
    failing[1].quality_ok = False
    failing[2].quality_ok = failing[2].latency_ok = False
    _, reason = select_variant(failing, SelectionPolicy(metric="auc"))
    text = in_chinese(compression_reason_text, reason)
    assert "int8：质量" in text and "pruned：质量和延迟" in text and "fp32" in text, text  # noqa: RUF001
    _, reason = select_variant(rows()[:1], SelectionPolicy(metric="auc"))
    assert "未构建任何变体" in in_chinese(compression_reason_text, reason)

    chosen, why = select_variant(rows(), SelectionPolicy(metric="auc"))
    result = CompressionResult(
        rows=rows(),
        chosen=chosen,
        reason=why,
        policy=SelectionPolicy(),
        settings=CompressionSettings(),
    )
    result.force("pruned", "pruned requested for this run")
    text = in_chinese(compression_reason_text, result.reason)
    assert text.startswith("本次运行指定了 pruned；仅按策略将使用 int8"), text  # noqa: RUF001


@pytest.mark.django_db
def test_models_page_shows_reasons_and_the_primary_metric_in_chinese() -> None:
    gate = "gate: 0.7101 is worse than the active model's 0.7802 by more than 0.005"
    _, chosen_why = select_variant(rows(), SelectionPolicy(metric="auc"))
    version(
        "churn",
        1,
        Status.ACTIVE,
        metrics={"auc": 0.78, "score": 0.78},
        compression_report={
            "chosen": "int8",
            "reason": chosen_why,
            "variants": [{"name": "int8", "artifact_bytes": 1000, "quality": 0.799}],
        },
        served_variant="int8",
    )
    version("churn", 2, Status.CANDIDATE, metrics={"auc": 0.71, "score": 0.71}, status_reason=gate)
    version("churn", 3, Status.FAILED, status_reason="worker lost: no heartbeat for 120 s")
    client = Client()
    client.force_login(UserFactory(username="admin_user", is_superuser=True, is_staff=True))
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = client.get("/models/").content.decode()
    assert "门控：0.7101 比在用模型的 0.7802 差" in html  # noqa: RUF001
    assert "工作进程丢失：120 秒无心跳" in html  # noqa: RUF001
    assert "is worse than" not in html and "no heartbeat" not in html
    assert "批量 1 / 256 时速度为" in html and "smaller" not in html
    assert "得分（AUC）" in html  # noqa: RUF001


def test_every_training_stage_the_code_reports_has_words() -> None:
    reported = set()
    for source in (
        "churn/services.py",
        "recommender/services.py",
        "eduplatform/registry/services.py",
    ):
        reported |= set(re.findall(r'progress\("(\w+)"', (ROOT / source).read_text()))
    assert reported and reported <= set(STAGES), reported - set(STAGES)
    for stage in reported:
        assert CHINESE.search(in_chinese(stage_text, stage)), stage
    assert in_chinese(stage_text, "a_newer_stage") == "a_newer_stage"


@pytest.mark.django_db
def test_models_page_shows_training_stages_and_gives_the_script_its_words_in_chinese() -> None:
    version("churn", 1, Status.ACTIVE, metrics={"auc": 0.78, "score": 0.78})
    version("churn", 2, Status.TRAINING, stage="train", percent=40)
    client = Client()
    client.force_login(UserFactory(username="admin_user", is_superuser=True, is_staff=True))
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    html = client.get("/models/").content.decode()
    # Rendered by the server: the versions table and the progress bar of the running version.
    assert "训练, 40%" in html and 'aria-valuetext="训练, 40%"' in html
    assert "train, 40%" not in html
    # For models.js (stages and statuses it shows while following a run, word()).
    assert 'data-msg-stage-compress="压缩"' in html
    assert 'data-msg-stage-done="完成"' in html
    assert 'data-msg-status-failed="失败"' in html
    script = (ROOT / "static/js/models.js").read_text()
    assert 'word("Stage", row.stage)' in script and 'word("Status", row.status)' in script


def test_the_scripts_status_words_are_the_status_template_s() -> None:
    from django.template.loader import render_to_string

    from eduplatform.registry.reasons import STATUSES

    assert set(STATUSES) == set(Status.values)
    with translation.override("zh-hans"):
        for status, words in STATUSES.items():
            assert render_to_string("registry/_status.html", {"status": status}).strip() == words
