"""Data parallelism for batch jobs: course runs split across local processes.

Churn features, the recommender's frames and batch scores are computed per
course run (ranks, rollups and item catalogues never cross runs), so a batch
splits into chunks of runs, each handled by a process with its own database
connection, and the results are put back together in course order. The Celery
scoring queue does the same across machines (`registry.score_all` fans out one
`score_batch` per chunk); this module does it inside one job, for training
features and for operators who score from a shell.

    with CoursePool(workers=2) as pool:
        sets = parallel_training_sets(as_of=today(), pool=pool)
        scored = parallel_batch_scores("churn", course_ids, pool=pool)

Workers are started with "spawn" by default: a fork after torch has run may
hang in its thread pool, and each worker needs its own database connection
anyway. The pool passes the parent's database name (tests use a test
database) and any settings overrides to every worker.
"""

from __future__ import annotations

import datetime as dt
import heapq
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import pandas as pd


def balanced_chunks(weights: Mapping[int, float], n: int) -> list[list[int]]:
    """Split ids into at most `n` chunks of about equal total weight.

    Greedy longest-first: each id (heaviest first) goes to the lightest chunk.
    Empty chunks are dropped; ids inside a chunk are sorted.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    heap = [(0.0, i) for i in range(n)]
    chunks: list[list[int]] = [[] for _ in range(n)]
    for key in sorted(weights, key=lambda k: (-float(weights[k]), k)):
        load, i = heapq.heappop(heap)
        chunks[i].append(key)
        heapq.heappush(heap, (load + float(weights[key]), i))
    return [sorted(c) for c in chunks if c]


def fixed_chunks(ids: Sequence[int], size: int) -> list[list[int]]:
    """Consecutive chunks of `size` ids (the last may be shorter), as `score_all` sends them."""
    if size < 1:
        raise ValueError("size must be at least 1")
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


_BARRIER: Any = None


def _init_worker(
    settings_module: str, db_name: str | None, overrides: dict[str, Any], barrier: Any
) -> None:
    global _BARRIER
    _BARRIER = barrier
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from django.conf import settings
    from django.db import connections

    if db_name:
        connections.settings["default"]["NAME"] = db_name
        connections["default"].settings_dict["NAME"] = db_name
    for key, value in overrides.items():
        setattr(settings, key, value)


class CoursePool:
    """A pool of worker processes with Django set up on the parent's database.

    `workers=1` still uses one worker process, so one against two compares like
    with like; `inline=True` runs in this process instead (no pool at all).
    """

    def __init__(
        self,
        workers: int,
        *,
        start_method: str = "spawn",
        settings_overrides: dict[str, Any] | None = None,
        inline: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self.inline = inline
        self._executor: ProcessPoolExecutor | None = None
        self._start_method = start_method
        self._overrides = dict(settings_overrides or {})

    def __enter__(self) -> CoursePool:
        if not self.inline:
            from django.conf import settings
            from django.db import connection, connections

            # A forked child must not share the parent's socket; spawn starts clean anyway.
            connections.close_all()
            context = multiprocessing.get_context(self._start_method)
            self._executor = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(
                    # pytest-django's settings fixture hides SETTINGS_MODULE; the env has it.
                    os.environ.get("DJANGO_SETTINGS_MODULE") or settings.SETTINGS_MODULE,
                    connection.settings_dict["NAME"],
                    self._overrides,
                    context.Barrier(self.workers),
                ),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def on_every_worker(self, fn: Callable[[], Any] | None = None) -> list[Any]:
        """Run `fn()` once in each worker (all started first); the workers' results.

        With no `fn`, starts every worker and sets Django up in it, so that
        timings taken afterwards leave process start-up out.
        """
        if self._executor is None:
            return [fn()] if fn is not None and self.inline else []
        # A worker waiting at the barrier takes no second task: n tasks meet n workers.
        return list(self._executor.map(partial(_meet, fn), range(self.workers)))

    def map(self, fn: Callable[[list[int]], Any], chunks: list[list[int]]) -> list[Any]:
        """`fn(chunk)` for every chunk, results in chunk order."""
        if self._executor is None:
            if not self.inline:
                raise RuntimeError("use CoursePool as a context manager")
            return [fn(c) for c in chunks]
        return list(self._executor.map(fn, chunks))


def _meet(fn: Callable[[], Any] | None, _: int) -> Any:
    _BARRIER.wait(timeout=300)
    return fn() if fn is not None else os.getpid()


def _course_weights(course_ids: Sequence[int]) -> dict[int, float]:
    """Enrolments per run: cheap to count, and features and scores scale with them."""
    from django.db.models import Count

    from analytics.models import Course

    counted = dict(
        Course.objects.filter(id__in=list(course_ids))
        .annotate(n=Count("enrollments"))
        .values_list("id", "n")
    )
    return {int(c): float(counted.get(c, 0)) + 1.0 for c in course_ids}


def chunks_for(course_ids: Sequence[int], workers: int) -> list[list[int]]:
    return balanced_chunks(_course_weights(course_ids), workers)


# ---------------------------------------------------------------- churn features


def churn_course_features(course_ids: list[int], as_of: dt.date):
    """`churn.features.labelled_runs` of those of some runs that started before `as_of`:
    what `training_sets` builds from them (ChurnFeatures, or None)."""
    from analytics.models import Course
    from churn.features import labelled_runs

    courses = list(
        Course.objects.filter(id__in=course_ids, start_date__lt=as_of).order_by("start_date", "id")
    )
    if not courses:
        return None
    return labelled_runs(courses, as_of)


def parallel_training_sets(*, as_of: dt.date, pool: CoursePool):
    """`churn.features.training_sets(as_of=...)` with the runs split across the pool.

    Same rows and split (the latest-starting quarter of runs validates); rows
    come back ordered by run as the single-process version orders them.
    """
    from analytics.models import Course
    from churn.features import split_in_time
    from churn.model.features import ChurnFeatures

    courses = list(Course.objects.filter(start_date__lt=as_of).order_by("start_date", "id"))
    if len(courses) < 2:
        return None
    chunks = chunks_for([c.id for c in courses], pool.workers)
    parts = [p for p in pool.map(partial(churn_course_features, as_of=as_of), chunks) if p]
    if not parts:
        return None
    features = ChurnFeatures.concat(parts)
    order = {c.id: i for i, c in enumerate(courses)}
    rank = features.frame["course_id"].map(order).to_numpy()
    features = features.subset(np.argsort(rank, kind="stable"))
    return split_in_time(features, courses, as_of)


# ---------------------------------------------------------------- recommender frames


def _learning_data(course_ids: list[int], until: dt.date | None, with_items: bool):
    from analytics.learning_data import learning_data

    return learning_data(course_ids=course_ids, until=until, with_items=with_items)


def parallel_learning_data(
    *, course_ids: Sequence[int], until: dt.date | None, with_items: bool, pool: CoursePool
):
    """`analytics.learning_data.learning_data` read chunk by chunk in the pool's processes.

    Every frame is keyed by course run, so the chunks' frames concatenate into
    the single read's frames (row order aside).
    """
    from eduplatform.ml.data import LearningData

    chunks = chunks_for(course_ids, pool.workers)
    parts = pool.map(partial(_learning_data, until=until, with_items=with_items), chunks)
    frames = {
        name: pd.concat([getattr(p, name) for p in parts], ignore_index=True)
        for name in LearningData.__dataclass_fields__
    }
    return LearningData(**frames)


# ---------------------------------------------------------------- batch scoring


def _score(course_ids: list[int], kind: str) -> int:
    from eduplatform.registry import services

    return services.batch_scores_refresh(kind=kind, course_ids=course_ids)


def parallel_batch_scores(
    kind: str, course_ids: Sequence[int], *, pool: CoursePool, chunk_size: int | None = None
) -> int:
    """`services.batch_scores_refresh` over chunks of runs in the pool's processes.

    Chunks are balanced by enrolments (one per worker) unless `chunk_size` is
    given. Each worker loads the served model once and writes its runs' rows
    (one transaction per run, as the in-line refresh does). Returns rows written.
    """
    chunks = (
        fixed_chunks(list(course_ids), chunk_size)
        if chunk_size
        else chunks_for(course_ids, pool.workers)
    )
    return sum(pool.map(partial(_score, kind=kind), chunks))


def load_served(kind: str) -> int | None:
    """Load the served model of `kind` in this process (`pool.on_every_worker` warms with it)."""
    from eduplatform.registry import serving

    served = serving.get_served(kind)
    return served.version if served is not None else None
