import json
import sys
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from eduplatform.ml.recommender.synthetic import synthetic_learning_data

SPLIT = 35


def write_oulad(folder: Path) -> Path:
    """A tiny OULAD-format folder (two module-presentations) from the synthetic generator."""
    data = synthetic_learning_data(
        n_items=30, n_learners=60, n_days=56, seed=3, course_ids=("AAA_2013J", "BBB_2014B")
    )
    folder.mkdir(parents=True, exist_ok=True)

    def split(frame: pd.DataFrame) -> pd.DataFrame:
        parts = frame["course_id"].str.split("_", expand=True)
        return frame.assign(code_module=parts[0], code_presentation=parts[1])

    courses = split(data.courses)
    courses.assign(module_presentation_length=courses["length_days"])[
        ["code_module", "code_presentation", "module_presentation_length"]
    ].to_csv(folder / "courses.csv", index=False)
    pd.DataFrame(
        {
            "code_module": ["AAA", "BBB"],
            "code_presentation": ["2013J", "2014B"],
            "id_assessment": [1, 2],
            "assessment_type": ["TMA", "TMA"],
            "date": [30, 30],
            "weight": [100, 100],
        }
    ).to_csv(folder / "assessments.csv", index=False)
    items = split(data.items)
    items.rename(columns={"item_id": "id_site"})[
        ["id_site", "code_module", "code_presentation", "activity_type", "week_from", "week_to"]
    ].to_csv(folder / "vle.csv", index=False)
    enrol = split(data.enrolments)
    info = enrol.rename(columns={"learner_id": "id_student"}).assign(
        gender="M",
        region="Wales",
        highest_education="HE Qualification",
        imd_band="10-20",
        age_band="0-35",
        disability="N",
        final_result="Pass",
    )
    info[
        [
            "code_module",
            "code_presentation",
            "id_student",
            "gender",
            "region",
            "highest_education",
            "imd_band",
            "age_band",
            "num_of_prev_attempts",
            "studied_credits",
            "disability",
            "final_result",
        ]
    ].to_csv(folder / "studentInfo.csv", index=False)
    info.assign(date_registration=-10, date_unregistration="")[
        [
            "code_module",
            "code_presentation",
            "id_student",
            "date_registration",
            "date_unregistration",
        ]
    ].to_csv(folder / "studentRegistration.csv", index=False)
    pd.DataFrame(
        {
            "id_assessment": [1],
            "id_student": [int(info["id_student"].iloc[0])],
            "date_submitted": [29],
            "is_banked": [0],
            "score": [70],
        }
    ).to_csv(folder / "studentAssessment.csv", index=False)
    vle = split(data.item_activity).rename(
        columns={
            "learner_id": "id_student",
            "item_id": "id_site",
            "day": "date",
            "clicks": "sum_click",
        }
    )
    vle[["code_module", "code_presentation", "id_student", "id_site", "date", "sum_click"]].to_csv(
        folder / "studentVle.csv", index=False
    )
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
    broken.mkdir()
    for path in oulad_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    vle = pd.read_csv(broken / "vle.csv").drop(columns=["activity_type"])
    vle.to_csv(broken / "vle.csv", index=False)
    with pytest.raises(CommandError) as info:
        run("--data", str(broken), "--split-day", str(SPLIT))
    message = str(info.value)
    assert "vle.csv" in message and "activity_type" in message and "\n" not in message


def test_non_numeric_click_count_is_a_command_error(oulad_dir, tmp_path):
    broken = tmp_path / "broken2"
    broken.mkdir()
    for path in oulad_dir.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    text = (broken / "studentVle.csv").read_text().splitlines()
    fields = text[1].split(",")
    fields[-1] = "many"
    text[1] = ",".join(fields)
    (broken / "studentVle.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(CommandError) as info:
        run("--data", str(broken), "--split-day", str(SPLIT))
    assert "sum_click" in str(info.value) and "\n" not in str(info.value)
