"""Churn features from the database: training sets and per-course serving frames."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass

import pandas as pd
from django.conf import settings

from analytics.learning_data import learning_data
from analytics.models import Course
from churn.model.features import ChurnFeatures, build_dataset, build_features
from eduplatform.core.caches import BoundedCache
from eduplatform.registry.kinds import FeatureChunk, TrainingFeatures

# Course runs whose serving frame one web process keeps (a frame is ~1 MB per
# 1,000 learners); the least recently read run goes first.
SERVING_FRAMES_MAX_RUNS = 64
# The label's column in a stored chunk of training rows.
LABEL = "__label__"


@dataclass
class TrainingSets:
    train: ChurnFeatures
    val: ChurnFeatures
    window: tuple[dt.date, dt.date]
    val_courses: list[str]


def training_sets(*, as_of: dt.date, course_ids: list[int] | None = None) -> TrainingSets | None:
    """Labelled learners at the configured cut-offs, split in time (latest runs validate).

    1. Read the runs that started before `as_of` (one SQL read per frame).
    2. Label finished runs by their final results ("oulad" mode) and running
       runs by unenrolment or inactivity after the cut-off, only where that
       window is fully observed.
    3. Hold out the latest-starting quarter of runs (at least one) for
       validation, so the model is chosen on the future, as it will be used.
    """
    courses = list(
        Course.objects.filter(start_date__lt=as_of)
        .filter(**({"id__in": course_ids} if course_ids else {}))
        .order_by("start_date", "id")
    )
    if len(courses) < 2:
        return None
    features = labelled_runs(courses, as_of)
    if features is None:
        return None
    return split_in_time(features, courses, as_of)


def labelled_runs(courses: list[Course], as_of: dt.date) -> ChurnFeatures | None:
    """Labelled churn rows of some runs (one read of their frames), or None if no run
    has a cut-off yet. Per run: final results label a finished run, unenrolment or
    inactivity a running one; the configured cut-offs before today."""
    data = learning_data(course_ids=[c.id for c in courses], until=as_of, with_items=False)
    finished_with_results = set(
        data.enrolments.loc[data.enrolments["final_result"].astype(str) != "", "course_id"]
    )
    parts = []
    runs = data.by_course()
    for course in courses:
        finished = course.day_of(as_of) >= course.length_days
        mode = "oulad" if finished and course.id in finished_with_results else "inactivity"
        cutoffs = [
            c for c in settings.CHURN_CUTOFFS if c < min(course.day_of(as_of), course.length_days)
        ]
        if not cutoffs:
            continue
        parts.append(
            build_dataset(
                runs[course.id],
                cutoffs,
                label_mode=mode,
                inactivity_days=settings.CHURN_INACTIVITY_DAYS,
            ).labelled()
        )
    return ChurnFeatures.concat(parts) if parts else None


# --------------------------------------------------------- the training's fan-out


def training_runs(as_of: dt.date) -> list[int]:
    """The runs a training as of that day reads, in start order (how `training_sets` orders)."""
    return list(
        Course.objects.filter(start_date__lt=as_of)
        .order_by("start_date", "id")
        .values_list("id", flat=True)
    )


def training_chunk(course_ids: list[int], as_of: dt.date) -> FeatureChunk:
    """`labelled_runs` of some runs as one stored chunk: the rows with their label, and
    the column lists (no rows when none of the runs has a cut-off yet)."""
    courses = list(Course.objects.filter(id__in=course_ids).order_by("start_date", "id"))
    features = labelled_runs(courses, as_of) if courses else None
    if features is None:
        return FeatureChunk(frames={}, meta={})
    return FeatureChunk(
        frames={"rows": features.frame.assign(**{LABEL: features.labels})},
        meta={
            "flat_columns": features.flat_columns,
            "seq_columns": features.seq_columns,
            "kinds": features.kinds,
            "n_weeks": features.n_weeks,
            "channels": features.channels,
        },
    )


def training_sets_from_chunks(gathered: TrainingFeatures) -> TrainingSets | None:
    """`training_sets` from the gathered chunks: the plan's runs, in plan (start) order,
    so the rows come in the order one process builds them chunk by chunk."""
    courses = list(Course.objects.filter(id__in=gathered.course_ids).order_by("start_date", "id"))
    parts = []
    for chunk in gathered.chunks:
        if "rows" not in chunk.frames:
            continue
        rows = chunk.frames["rows"]
        meta = chunk.meta
        parts.append(
            ChurnFeatures(
                frame=rows.drop(columns=[LABEL]),
                labels=rows[LABEL].to_numpy(dtype=float),
                flat_columns=list(meta["flat_columns"]),
                seq_columns=list(meta["seq_columns"]),
                kinds=dict(meta["kinds"]),
                n_weeks=int(meta["n_weeks"]),
                channels=list(meta["channels"]),
            )
        )
    if len(courses) < 2 or not parts:
        return None
    return split_in_time(ChurnFeatures.concat(parts), courses, gathered.as_of)


def split_in_time(
    features: ChurnFeatures, courses: list[Course], as_of: dt.date
) -> TrainingSets | None:
    """The latest-starting quarter of `courses` (at least one) validates; None when a side
    would be empty. `courses` are in start order."""
    n_val = max(1, len(courses) // 4)
    val_ids = {c.id for c in courses[-n_val:]}
    is_val = features.frame["course_id"].isin(val_ids).to_numpy()
    if is_val.all() or not is_val.any():
        return None
    return TrainingSets(
        train=features.subset(~is_val),
        val=features.subset(is_val),
        window=(courses[0].start_date, as_of),
        val_courses=[c.code for c in courses[-n_val:]],
    )


class ServingFrames:
    """Per-process cache of each course run's current feature frame.

    Ranks are relative to the course run, so a learner's row needs the whole
    run's activity; reading it once per run and TTL keeps requests at a dict
    lookup plus one forward pass. Bounded: one frame per run (a new day replaces
    the run's older one) and at most `SERVING_FRAMES_MAX_RUNS` runs.
    """

    def __init__(
        self, name: str = "churn.serving_frames", maxsize: int = SERVING_FRAMES_MAX_RUNS
    ) -> None:
        self._frames = BoundedCache(
            name,
            maxsize=maxsize,
            ttl=lambda: settings.SERVING_FEATURES_TTL,
        )
        self._lock = threading.Lock()

    def get(self, course: Course, as_of: dt.date) -> pd.DataFrame:
        day = min(course.day_of(as_of), course.length_days - 1)
        key = (course.id, day)
        hit = self._frames.get(key)
        if hit is not None:
            return hit
        with self._lock:
            data = learning_data(
                course_ids=[course.id],
                until=course.start_date + dt.timedelta(days=day),
                with_items=False,
            )
            frame = build_features(
                data, cutoff=day, label_mode="inactivity", inactivity_days=1
            ).frame
            frame = frame.set_index("learner_id", drop=False)
            # Older days of this run are dead weight once a newer day is read.
            self._frames.discard_where(lambda k: k[0] == course.id and k != key)
            self._frames.put(key, frame)
            return frame

    def __len__(self) -> int:
        return len(self._frames)

    def clear(self) -> None:
        self._frames.clear()


serving_frames = ServingFrames()
