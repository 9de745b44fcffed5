import json
import shutil
import sys
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from eduplatform.ml.datasets.synthetic import generate, write_oulad_folder

SPLIT = 35


def write_oulad(folder: Path) -> Path:
    """A small OULAD-format folder (two module-presentations) from the platform generator."""
    write_oulad_folder(generate(learners=60, courses=2, days=90, seed=3), folder)
    return folder


@pytest.fixture(scope="module")
def oulad_dir(tmp_path_factory):
    return write_oulad(tmp_path_factory.mktemp("oulad") / "data")


def run(*args: str) -> str:
    out = StringIO()
    call_command("evaluate_recommender", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_prints_the_table_and_writes_json(oulad_dir, tmp_path):
    target = tmp_path / "out" / "result.json"
    text = run("--data", str(oulad_dir), "--split-day", str(SPLIT), "--json", str(target))
    for name in ("recommender", "popularity", "recent_popularity", "item_knn", "als", "bpr"):
        assert name in text
    assert "Recall@10" in text and "NDCG@10" in text and "coverage" in text
    result = json.loads(target.read_text())
    assert result["split_day"] == SPLIT
    assert result["course_runs"] == 2 and result["test_learners"] > 0
    product = result["models"]["recommender"]
    assert product["available"] and 0 < product["ndcg"] <= 1
    assert f"{product['ndcg']:.4f}" in text
    implicit_available = "implicit" in sys.modules or _importable("implicit")
    assert result["models"]["als"]["available"] is implicit_available


def _importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def test_runs_without_implicit_and_reports_those_peers_unavailable(
    oulad_dir, monkeypatch, tmp_path
):
    monkeypatch.setitem(sys.modules, "implicit", None)  # import implicit -> ImportError
    target = tmp_path / "r.json"
    text = run("--data", str(oulad_dir), "--split-day", str(SPLIT), "--json", str(target))
    result = json.loads(target.read_text())
    assert result["models"]["als"]["available"] is False
    assert result["models"]["bpr"]["available"] is False
    assert result["models"]["recommender"]["available"] is True
    assert "unavailable" in text


def test_missing_directory_is_a_one_line_command_error(tmp_path):
    with pytest.raises(CommandError) as info:
        run("--data", str(tmp_path / "nope"), "--split-day", "100")
    assert "nope" in str(info.value) and "\n" not in str(info.value)


def test_malformed_file_is_a_one_line_command_error(oulad_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(oulad_dir, broken)
    vle = pd.read_csv(broken / "vle.csv").drop(columns=["activity_type"])
    vle.to_csv(broken / "vle.csv", index=False)
    with pytest.raises(CommandError) as info:
        run("--data", str(broken), "--split-day", str(SPLIT))
    message = str(info.value)
    assert "vle.csv" in message and "activity_type" in message and "\n" not in message


def test_non_numeric_click_count_is_a_command_error(oulad_dir, tmp_path):
    broken = tmp_path / "broken2"
    shutil.copytree(oulad_dir, broken)
    clicks = sorted((broken / "studentVle").glob("*.csv.gz"))[0]
    frame = pd.read_csv(clicks).astype({"sum_click": object})
    frame.loc[0, "sum_click"] = "many"
    frame.to_csv(clicks, index=False)
    with pytest.raises(CommandError) as info:
        run("--data", str(broken), "--split-day", str(SPLIT))
    assert "sum_click" in str(info.value) and "\n" not in str(info.value)
