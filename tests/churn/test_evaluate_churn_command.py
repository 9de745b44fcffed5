import json

import pytest
import torch
from django.core.management import call_command
from django.core.management.base import CommandError

from churn.model.features import build_dataset
from eduplatform.ml.datasets.oulad import load_oulad
from tests.churn.model.synth import write_oulad_folder

# one seed, two epochs: the command's plumbing, not the model's quality
FAST = ("--seeds", "1", "--max-epochs", "2")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Small nets: on a busy 2-core machine one intra-op thread is much faster."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_oulad_folder(tmp_path_factory.mktemp("oulad"), n_learners=30)


def test_split_presentation_prints_table_and_writes_json(folder, tmp_path, capsys):
    out = tmp_path / "eval.json"
    call_command(
        "evaluate_churn",
        "--train",
        str(folder),
        "--split-presentation",
        "2014B",
        "--cutoffs",
        "30,60",
        "--json",
        str(out),
        "--seeds",
        "1",
        "--max-epochs",
        "2",
    )
    text = capsys.readouterr().out
    for word in ("product", "logreg", "hgb", "AUC", "wall time"):
        assert word in text
    payload = json.loads(out.read_text())
    assert payload["cutoffs"] == [30, 60]
    assert len(payload["scores"]) == 6
    assert payload["val_presentations"] == ["2013J"]
    # the printed AUC of the product at day 30 is the one in the JSON
    product30 = next(s for s in payload["scores"] if s["model"] == "product" and s["cutoff"] == 30)
    line = next(ln for ln in text.splitlines() if ln.split()[:2] == ["30", "product"])
    assert float(line.split()[2]) == pytest.approx(product30["auc"], abs=5e-4)


def evaluate_folders(train, test, *extra):
    call_command(
        "evaluate_churn",
        "--train",
        str(train),
        "--test",
        str(test),
        "--cutoffs",
        "30",
        *FAST,
        *extra,
    )


def test_train_and_test_folders(folder, tmp_path, capsys):
    test_dir = write_oulad_folder(
        tmp_path / "other", n_learners=20, presentations=("2014J",), seed=5
    )
    evaluate_folders(folder, test_dir)
    assert "product" in capsys.readouterr().out


def test_test_runs_also_in_training_are_left_out(folder, tmp_path, capsys):
    # 2014B of the test folder has the same run ids as the training folder's 2014B
    test_dir = write_oulad_folder(
        tmp_path / "later", n_learners=20, presentations=("2014B", "2014J"), seed=5
    )
    out = tmp_path / "eval.json"
    evaluate_folders(folder, test_dir, "--json", str(out))
    text = capsys.readouterr().out
    assert "left out 2 course run(s) also in the training data: AAA_2014B, BBB_2014B" in text
    payload = json.loads(out.read_text())
    assert payload["left_out_test_runs"] == ["AAA_2014B", "BBB_2014B"]
    held_out = load_oulad(test_dir, course_ids=["AAA_2014J", "BBB_2014J"])
    expected = len(build_dataset(held_out, [30]).labelled())
    assert {s["n_learners"] for s in payload["scores"]} == {expected}


def test_test_folder_with_only_training_runs_is_refused(folder):
    with pytest.raises(CommandError, match="nothing held out to test on"):
        call_command("evaluate_churn", "--train", str(folder), "--test", str(folder))


def test_test_folder_without_runs_is_refused(folder, tmp_path):
    empty = write_oulad_folder(tmp_path / "empty", n_learners=5, presentations=("2014J",))
    (empty / "courses.csv").write_text("code_module,code_presentation,module_presentation_length\n")
    with pytest.raises(CommandError, match="lists no course runs"):
        call_command("evaluate_churn", "--train", str(folder), "--test", str(empty))


def test_run_in_two_train_folders_is_refused(folder, tmp_path):
    again = write_oulad_folder(tmp_path / "again", n_learners=10, presentations=("2013J",))
    with pytest.raises(CommandError, match="AAA_2013J is in two --train folders"):
        call_command(
            "evaluate_churn", "--train", str(folder), "--train", str(again), "--test", str(again)
        )


def test_missing_dir_is_a_one_line_error(tmp_path):
    with pytest.raises(CommandError) as exc:
        call_command(
            "evaluate_churn",
            "--train",
            str(tmp_path / "nope"),
            "--test",
            str(tmp_path),
            "--cutoffs",
            "30",
        )
    assert "not a directory" in str(exc.value)
    assert "\n" not in str(exc.value)


def test_malformed_file_is_a_one_line_error(folder, tmp_path):
    bad = write_oulad_folder(tmp_path / "bad", n_learners=10)
    (bad / "courses.csv").write_text(
        "code_module,code_presentation,module_presentation_length\nAAA,2013B,abc\n"
    )
    with pytest.raises(CommandError) as exc:
        call_command("evaluate_churn", "--train", str(folder), "--test", str(bad))
    assert "courses.csv" in str(exc.value) and "\n" not in str(exc.value)


def test_bad_arguments(folder):
    with pytest.raises(CommandError, match="no presentation"):
        call_command("evaluate_churn", "--train", str(folder), "--split-presentation", "2099X")
    with pytest.raises(CommandError, match="integers"):
        call_command(
            "evaluate_churn",
            "--train",
            str(folder),
            "--split-presentation",
            "2014B",
            "--cutoffs",
            "a,b",
        )
    with pytest.raises(CommandError):
        call_command("evaluate_churn", "--train", str(folder))
    for args, message in [
        (("--seeds", "0"), "--seeds must be at least 1, got 0"),
        (("--max-epochs", "-1"), "--max-epochs must be at least 1, got -1"),
        (("--cutoffs=-5,30",), "--cutoffs are days from the course start, got -5"),
        # the synthetic runs last 240 days
        (("--cutoffs", "30,400"), "no train learner is enrolled on cut-off day 400"),
    ]:
        with pytest.raises(CommandError) as raised:
            call_command(
                "evaluate_churn", "--train", str(folder), "--split-presentation", "2014B", *args
            )
        assert str(raised.value) == message


def test_nonzero_exit_and_one_line_on_stderr(tmp_path, capsys):
    from churn.management.commands.evaluate_churn import Command

    argv = ["manage.py", "evaluate_churn", "--train", str(tmp_path / "x"), "--test", str(tmp_path)]
    with pytest.raises(SystemExit) as exc:
        Command().run_from_argv(argv)
    assert exc.value.code != 0
    err = capsys.readouterr().err.strip()
    assert "not a directory" in err and len(err.splitlines()) == 1
