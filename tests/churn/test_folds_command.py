"""`evaluate_churn --folds forward` on a small generated OULAD folder."""

import json

import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.churn.model.synth import write_oulad_folder

FAST = ("--seeds", "1", "--max-epochs", "2")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_oulad_folder(tmp_path_factory.mktemp("oulad"), n_learners=30)


def test_folds_forward_table_and_json(folder, tmp_path, capsys):
    out = tmp_path / "folds.json"
    call_command(
        "evaluate_churn",
        "--train",
        str(folder),
        "--folds",
        "forward",
        "--cutoffs",
        "30,60",
        *FAST,
        "--json",
        str(out),
    )
    text = capsys.readouterr().out
    assert "forward 2013J" in text and "forward 2014B" in text and "lomo 2014B" in text
    d = json.loads(out.read_text())
    assert "scores" not in d
    names = [f["name"] for f in d["folds"]]
    assert names == ["forward 2013J", "forward 2014B", "lomo 2014B"]
    for fold in d["folds"]:
        assert set(fold["mean_auc"]) == {"product", "logreg", "hgb"}
        assert {(s["model"], s["cutoff"]) for s in fold["scores"]} == {
            (m, c) for m in ("product", "logreg", "hgb") for c in (30, 60)
        }
    forward = d["folds"][1]
    assert forward["train_presentations"] == ["2013B", "2013J"]
    assert forward["inner_validation"] == ["2013J"]
    assert d["folds"][2]["modules"] == ["AAA", "BBB"]


def test_folds_need_two_presentations(tmp_path):
    one = write_oulad_folder(tmp_path / "one", n_learners=10, presentations=("2013B",))
    with pytest.raises(CommandError, match="at least two presentations") as err:
        call_command("evaluate_churn", "--train", str(one), "--folds", "forward", *FAST)
    assert str(one) in str(err.value) and "\n" not in str(err.value)


def test_folds_with_a_missing_table_is_one_line(folder, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(folder, broken)
    (broken / "studentVle.csv").unlink()
    with pytest.raises(CommandError) as err:
        call_command("evaluate_churn", "--train", str(broken), "--folds", "forward", *FAST)
    assert "studentVle" in str(err.value) and "\n" not in str(err.value)


def test_folds_refuse_a_test_folder(folder):
    with pytest.raises(CommandError, match="--folds"):
        call_command(
            "evaluate_churn", "--train", str(folder), "--test", str(folder), "--folds", "forward"
        )
