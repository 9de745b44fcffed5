"""The models page's metric keys and compression columns in words, in the reader's language."""

from __future__ import annotations

import dataclasses
import re

import pytest
from django.conf import settings
from django.test import Client
from django.utils import translation

from eduplatform.ml.compress.pipeline import CompressionSettings, SelectionPolicy, VariantRow
from eduplatform.registry import views
from eduplatform.registry.labels import LABELS, label
from eduplatform.registry.models import ModelVersion
from tests.factories import UserFactory
from tests.registry.test_models_page import churn_history

REPORT = {
    "chosen": "int8",
    "policy": {"metric": "auc", "tolerance": 0.005, "relative": False},
    "variants": [
        {"name": "fp32", "artifact_bytes": 40960, "quality": 0.81, "quality_ok": True},
        {"name": "int8", "artifact_bytes": 10240, "quality": 0.805, "quality_ok": True},
    ],
}


def test_every_field_the_compression_kit_reports_has_a_label() -> None:
    # A new field of the kit's report shows as a raw key until it is given words here.
    keys = {
        f.name
        for cls in (VariantRow, SelectionPolicy, CompressionSettings)
        for f in dataclasses.fields(cls)
    }
    assert keys - set(LABELS) == set()


def chinese_admin() -> Client:
    client = Client()
    client.force_login(UserFactory(username="admin_user", is_superuser=True, is_staff=True))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"
    return client


@pytest.mark.django_db
def test_models_page_headers_and_metrics_in_chinese() -> None:
    churn_history()
    html = chinese_admin().get("/models/").content.decode()
    # The compression table's headers: known keys in words, unknown ones ("bytes") as they are;
    # the kit's fields in its order, then the rest alphabetically, on every database (jsonb
    # reorders keys, SQLite keeps them: the page followed the storage once).
    table = html[html.index("data-compression-table") :]
    headers = re.search(r"<thead><tr>(.*?)</tr></thead>", table).group(1)
    assert re.findall(r'<th scope="col">([^<]*)</th>', headers) == [
        "变体",
        "参数量",
        "AUC",
        "bytes",
        "latency ms p50",
        "质量：AUC",  # noqa: RUF001
        "在用",
    ]
    # Metric keys of the active version, and the report's own keys.
    assert '<th scope="row">验证集 PR AUC</th>' in html
    assert "<dt>选定的变体</dt>" in html


def test_report_values_in_chinese() -> None:
    version = ModelVersion(version=3, compression_report=REPORT, served_variant="int8")
    with translation.override("zh-hans"):
        section = views.compression_section("churn", version)
    assert section["headers"][:3] == ["变体", "模型文件大小（字节）", "质量"]  # noqa: RUF001
    assert section["rows"][0]["cells"][-1] == "是"
    # The selection policy's fields in words (its values are data).
    assert dict(section["extra"])["选择策略"] == "质量指标: auc; 容差: 0.005; 相对: 否"


def test_english_labels_and_unknown_keys() -> None:
    with translation.override("en-gb"):
        assert label("val_auc") == "validation AUC"
        assert label("p50_b256_ms") == "p50 latency, batch 256 (ms)"
        assert label("quality.auc") == "quality: AUC"
        assert label("a_key_of_a_newer_report") == "a key of a newer report"
