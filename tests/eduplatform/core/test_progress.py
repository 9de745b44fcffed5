"""Long commands draw a tqdm bar on a terminal only; -v 0 and pipes stay quiet; the output is
the same either way."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import call_command
from django.core.management.base import BaseCommand, OutputWrapper

from eduplatform.core.progress import command_bar, say

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(name: str, *args: str, tty: bool, **options) -> tuple[str, str]:
    out, err = io.StringIO(), (Terminal() if tty else io.StringIO())
    call_command(name, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def test_command_bar_is_drawn_on_a_terminal_only():
    command = BaseCommand()
    command.stderr = OutputWrapper(Terminal())
    assert not command_bar(command, {"verbosity": 1}).disable
    assert command_bar(command, {"verbosity": 0}).disable
    assert command_bar(command, {"verbosity": 1, "no_progress": True}).disable
    command.stderr = OutputWrapper(io.StringIO())
    assert command_bar(command, {"verbosity": 2}).disable


def test_say_writes_the_same_line_with_or_without_a_bar():
    for stream in (Terminal(), io.StringIO()):
        command = BaseCommand()
        command.stderr = OutputWrapper(stream)
        with command_bar(command, {"verbosity": 1}) as bar:
            say(command, bar, "  training")
        assert "  training\n" in stream.getvalue()


def test_seed_demo_shows_progress_on_a_terminal_and_is_quiet_otherwise():
    seed = ["--learners", "30", "--courses", "1", "--days", "30"]
    out_tty, err_tty = run("seed_demo", *seed, "--seed", "1", tty=True)
    assert "rows" in err_tty and "\r" in err_tty  # a tqdm bar, redrawn in place
    out_pipe, err_pipe = run("seed_demo", *seed, "--seed", "2", tty=False)
    assert err_pipe == ""
    out_quiet, err_quiet = run("seed_demo", *seed, "--seed", "3", tty=True, verbosity=0)
    assert err_quiet == ""
    # The bar never reaches the output.
    assert out_tty.startswith("seeded 1 course runs, 30 learners")
    for out in (out_tty, out_pipe, out_quiet):
        assert "\r" not in out and "rows" not in out
        assert out.splitlines()[-1].startswith("seeded ")


def test_import_oulad_progress_follows_the_terminal_verbosity_and_flag(oulad_slice):
    _, err_tty = run("import_oulad", str(oulad_slice), tty=True)
    assert "rows" in err_tty and "\r" in err_tty
    _, err_flag = run("import_oulad", str(oulad_slice), "--no-progress", tty=True)
    _, err_quiet = run("import_oulad", str(oulad_slice), tty=True, verbosity=0)
    _, err_pipe = run("import_oulad", str(oulad_slice), tty=False)
    assert err_flag == err_quiet == err_pipe == ""


def masked(text: str) -> str:
    # Timings and scores differ from run to run; the lines and words must not.
    return re.sub(r"\d+(?:\.\d+)?", "#", text)


def test_evaluate_churn_shows_its_step_on_a_terminal_and_is_quiet_otherwise(tmp_path):
    from tests.churn.model.synth import write_oulad_folder

    folder = write_oulad_folder(tmp_path / "oulad", n_learners=30)
    args = ("--train", str(folder), "--split-presentation", "2014B", "--cutoffs", "30")
    fast = ("--seeds", "1", "--max-epochs", "1")
    out_tty, err_tty = run("evaluate_churn", *args, *fast, tty=True)
    # A bar redrawn in place naming the step and the time so far.
    assert "\r" in err_tty and "features" in err_tty and "[00:" in err_tty
    out_pipe, err_pipe = run("evaluate_churn", *args, *fast, tty=False)
    _, err_quiet = run("evaluate_churn", *args, *fast, tty=True, verbosity=0)
    assert err_pipe == err_quiet == ""
    assert "\r" not in out_tty and masked(out_tty) == masked(out_pipe)


def test_evaluate_recommender_shows_its_step_on_a_terminal_and_is_quiet_otherwise(tmp_path):
    from eduplatform.ml.datasets.synthetic import generate, write_oulad_folder

    write_oulad_folder(generate(learners=60, courses=2, days=90, seed=3), tmp_path / "data")
    args = ("--data", str(tmp_path / "data"), "--split-day", "35")
    out_tty, err_tty = run("evaluate_recommender", *args, tty=True)
    assert "\r" in err_tty and "NDCG@10" in err_tty and "[00:" in err_tty
    out_pipe, err_pipe = run("evaluate_recommender", *args, tty=False)
    _, err_quiet = run("evaluate_recommender", *args, tty=True, verbosity=0)
    assert err_pipe == err_quiet == ""
    assert "\r" not in out_tty and masked(out_tty) == masked(out_pipe)
    # -v 2 off a terminal: the step lines themselves, as before.
    _, err_verbose = run("evaluate_recommender", *args, tty=False, verbosity=2)
    assert "NDCG@10" in err_verbose and "\r" not in err_verbose


def test_retrain_wait_shows_the_run_s_stage_and_percent_on_a_terminal(monkeypatch):
    from eduplatform.registry import services
    from eduplatform.registry.management.commands import retrain
    from eduplatform.registry.models import ModelVersion

    training = ModelVersion.Status.TRAINING
    runs: list[ModelVersion] = []

    def request(**_kwargs) -> ModelVersion:
        # A run the training worker reports on once a second, then promotes.
        ModelVersion.objects.filter(kind="churn").update(status=ModelVersion.Status.RETIRED)
        row = ModelVersion.objects.create(kind="churn", version=len(runs) + 1, status=training)
        runs.append(row)
        return row

    def worker_reports(_seconds: float) -> None:
        row = ModelVersion.objects.get(pk=runs[-1].pk)
        steps = {0: ("features", 5), 5: ("train", 40), 40: ("register", 95)}
        if row.percent in steps:
            row.stage, row.percent = steps[row.percent]
        else:
            row.status, row.stage, row.percent = ModelVersion.Status.ACTIVE, "done", 100
        row.save()

    monkeypatch.setattr(services, "retrain_request", request)
    monkeypatch.setattr(retrain.time, "sleep", worker_reports)
    out_tty, err_tty = run("retrain", "churn", "--wait", tty=True)
    assert "\r" in err_tty and "train: " in err_tty and "40%" in err_tty
    out_pipe, err_pipe = run("retrain", "churn", "--wait", tty=False)
    _, err_quiet = run("retrain", "churn", "--wait", tty=True, verbosity=0)
    assert err_pipe == err_quiet == ""
    assert out_tty == "churn v1: training\nchurn v1: active\n"
    assert out_pipe == "churn v2: training\nchurn v2: active\n"


def test_retrain_shows_a_run_trained_in_this_process(monkeypatch):
    # No broker (make demo): the training runs inside retrain_request and reports here.
    from eduplatform.registry import services
    from eduplatform.registry.models import ModelVersion

    def request(**_kwargs) -> ModelVersion:
        ModelVersion.objects.filter(kind="churn").update(status=ModelVersion.Status.RETIRED)
        number = ModelVersion.objects.filter(kind="churn").count() + 1
        row = ModelVersion.objects.create(
            kind="churn", version=number, status=ModelVersion.Status.TRAINING
        )
        for stage, percent in (("features", 5), ("compress", 65), ("register", 95)):
            services.model_version_progress(version_id=row.pk, stage=stage, percent=percent)
        row.status = ModelVersion.Status.ACTIVE
        row.save()
        return row

    monkeypatch.setattr(services, "retrain_request", request)
    out, err = run("retrain", "churn", tty=True)
    assert "compress: " in err and "65%" in err and "\r" in err
    assert out == "churn v1: active\n"
    _, err_pipe = run("retrain", "churn", tty=False)
    assert err_pipe == ""
    assert services._progress_listeners == []  # the command's listener is gone


def test_rotate_field_keys_shows_progress_on_a_terminal_only(settings):
    from cryptography.fernet import Fernet

    from tests.factories import LearnerFactory

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    LearnerFactory.create_batch(3, name="Ada Lovelace", email="ada@example.org")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    out_tty, err_tty = run("rotate_field_keys", tty=True)
    assert "learners" in err_tty and "\r" in err_tty
    out_pipe, err_pipe = run("rotate_field_keys", tty=False)
    assert err_pipe == "" and out_tty == out_pipe
    assert out_pipe.startswith("re-encrypted personal data of 3 learners")


def test_demo_setup_shows_its_steps_on_a_terminal_only(monkeypatch):
    from analytics.management.commands import demo_setup
    from eduplatform.registry import services

    calls = []
    monkeypatch.setattr(demo_setup, "call_command", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(services, "batch_scores_refresh", lambda **k: 0)
    _, err_tty = run("demo_setup", tty=True)
    assert "steps" in err_tty and "recommender: score" in err_tty
    assert calls == [("retrain", "churn", "--wait"), ("retrain", "recommender", "--wait")]
    out_pipe, err_pipe = run("demo_setup", tty=False)
    assert err_pipe == ""
    assert "churn: scored 0 enrolments" in out_pipe and "\r" not in out_pipe
