"""manage.py compression_report on tiny synthetic setups (no database, no OULAD)."""

from __future__ import annotations

import io
import json

import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError

from eduplatform.ml.compress import VARIANTS

FAST = ["--repeats", "10", "--bench-seconds", "0.5", "--finetune-epochs", "1"]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def run(*args) -> str:
    out = io.StringIO()
    call_command("compression_report", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_churn_report_on_generated_data_prints_the_table_and_writes_json(tmp_path):
    path = tmp_path / "report" / "churn.json"
    text = run(
        "--model", "churn", "--synthetic", "--max-students", "300", "--seeds", "1",
        "--max-epochs", "2", *FAST, "--json", str(path),
    )  # fmt: skip
    assert "compression report: churn model" in text
    for name in VARIANTS:
        assert f" {name} " in text
    assert "served:" in text
    report = json.loads(path.read_text())
    assert [v["name"] for v in report["variants"]] == list(VARIANTS)
    assert report["chosen"] in VARIANTS
    assert report["metric"] == "auc"
    assert report["policy"]["tolerance"] == 0.005
    rows = {v["name"]: v for v in report["variants"]}
    assert rows["fp32"]["size_ratio"] == 1.0
    assert rows["structured+quantized"]["artifact_bytes"] < rows["fp32"]["artifact_bytes"] / 4
    assert rows["quantized"]["serving_bytes"] < rows["fp32"]["serving_bytes"]
    assert all(v["p50_b1_ms"] > 0 and v["p50_b256_ms"] > 0 for v in report["variants"])


def test_recommender_report_on_a_small_synthetic_catalogue(tmp_path):
    path = tmp_path / "rec.json"
    text = run(
        "--model", "recommender", "--catalog-items", "60", "--learners", "60", "--untrained",
        "--variants", "quantized,structured+quantized", *FAST, "--json", str(path),
        "--serve", "structured+quantized",
    )  # fmt: skip
    assert "synthetic catalogue of 60 items" in text
    report = json.loads(path.read_text())
    assert [v["name"] for v in report["variants"]] == ["fp32", "quantized", "structured+quantized"]
    assert report["metric"] == "ndcg@10" and report["policy"]["relative"] is True
    assert report["variants"][0]["quality"] == 1.0  # agreement of fp32 with itself
    assert report["extra"]["items"] == 60
    assert report["chosen"] == "structured+quantized"  # --serve: a recipe chosen elsewhere
    assert report["extra"]["policy_choice"]["chosen"] in (
        "fp32",
        "quantized",
        "structured+quantized",
    )
    assert "forced by --serve" in text


def test_bad_arguments_are_command_errors():
    with pytest.raises(CommandError, match="--catalog-items"):
        run("--model", "churn", "--catalog-items", "100")
    with pytest.raises(CommandError, match="--serve"):
        run("--model", "churn", "--synthetic", "--variants", "quantized", "--serve", "pruned")
    with pytest.raises(CommandError, match="unknown variants"):
        run("--model", "churn", "--synthetic", "--variants", "zip")
