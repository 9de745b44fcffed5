"""Training features fanned out as a Celery chord over chunks of course runs (#28 item 3).

Two REAL worker processes (Redis broker and result backend, the test's PostgreSQL
database) build the chunks of a churn retrain and train on them; the features
they gathered (sha256 recorded in the run's metrics) are the ones this process
builds from the same plan in-process, and those are, row for row and in order,
one build over every run at once. Both workers took chunks; the stored chunks
are gone once the run finished.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pandas as pd
import pytest

from analytics.models import Course
from churn.features import LABEL
from eduplatform.core.clock import today
from eduplatform.registry import features, services
from eduplatform.registry.kinds import get_kind
from eduplatform.registry.models import ModelVersion
from tests.registry.test_worker import (  # noqa: F401 - fixtures used by name
    FAST,
    broker,
    finished,
    pipeline,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _in_process(kind: str, parameters: dict) -> features.TrainingFeatures:
    """The plan a retrain makes, every chunk built and gathered in this process."""
    version = services.model_version_start(kind=kind, triggered_by="test", parameters=parameters)
    features.training_features_plan(version_id=version.id, as_of=today())
    version.refresh_from_db()
    gathered = features.training_features_gather(version=version)
    services.model_version_fail(version_id=version.id, reason="reference only")
    assert not features.features_dir(version).exists()  # discarded with the run
    ModelVersion.objects.filter(id=version.id).delete()
    return gathered


def _rows(gathered: features.TrainingFeatures) -> pd.DataFrame:
    # `last_score` breaks a same-day tie by the SQL row order (no ORDER BY), which may
    # differ between one read of every run and a read per chunk (tests/bench/test_course_pool.py).
    frames = [c.frames["rows"] for c in gathered.chunks if "rows" in c.frames]
    return pd.concat(frames, ignore_index=True).drop(columns="last_score")


def test_two_workers_build_the_chunks_one_process_builds(pipeline):  # noqa: F811
    started = time.monotonic()
    runs = list(Course.objects.order_by("start_date", "id").values_list("id", flat=True))
    assert len(runs) == 3  # the pipeline's platform: 3 runs of 160 learners
    parameters = {**FAST, "feature_chunk_runs": 1, "warm_start": True}

    reference = _in_process("churn", parameters)
    assert [len(c.frames) for c in reference.chunks] == [1, 1, 1]
    one_build = get_kind("churn").features.build(runs, reference.as_of)
    pd.testing.assert_frame_equal(
        _rows(reference), one_build.frames["rows"].drop(columns="last_score")
    )
    assert reference.course_ids == runs
    assert _rows(reference)[LABEL].notna().all()

    pipeline["start_worker"]("w1")
    pipeline["start_worker"]("w2")
    version = services.retrain_request(
        kind="churn", triggered_by="test", parameters=FAST | {"feature_chunk_runs": 1}
    )
    assert version.feature_plan["chunks"] == [[c] for c in runs]
    row = wait_for(finished, 50, "the fanned-out retrain")
    assert row.status == ModelVersion.Status.ACTIVE, row.status_reason
    assert row.metrics["features_sha256"] == reference.digest

    logs = {name: (pipeline["logs"] / f"{name}.log").read_text() for name in ("w1", "w2")}
    took = {
        name: len(re.findall(r"registry\.train_features_chunk\[[^\]]+\] succeeded", text))
        for name, text in logs.items()
    }
    assert sum(took.values()) == 3 and all(took.values()), took
    assert not re.search(r"built \d+ of 3 feature chunks itself", "".join(logs.values()))
    # Discarded by the training once the run is no longer training (just after it is).
    wait_for(lambda: not features.features_dir(row).exists(), 10, "the chunks' removal")
    assert not list(Path(features.features_root()).glob("*"))
    assert time.monotonic() - started < 60
