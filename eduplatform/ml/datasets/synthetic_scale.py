"""The synthetic platform at scale: exactly N events, in batches, reproducible by seed.

`synthetic.generate` draws one platform (weekly releases, cohorts, learners who fade
before dropping out) in memory. Here N events are drawn as a series of such
platforms, each `BATCH_COURSES` course runs and about `batch_events` events, so
memory stays bounded whatever N (100M events are about 50 batches of 2M). Each
batch gets its own seed (from the seed and its number), its own module codes
(`G<seed>B<batch>M<n>`) and learner namespace, and its runs end a quarter earlier
than the previous batch's, cycling over `YEARS` years: a catalogue of cohorts
spread over time, as a university's few years look. The last batch is cut to
make the total exactly N.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from eduplatform.ml.datasets.oulad import VleChunk
from eduplatform.ml.datasets.synthetic import SyntheticPlatform, generate

BATCH_COURSES = 10
BATCH_DAYS = 200
# Events per learner of `generate(courses=10, days=200)` (measured: 1,925,948 events of
# 8,700 learners with seed 1, 221 each; the bench's scale section measured 230).
EVENTS_PER_LEARNER = 221
YEARS = 3
QUARTER_DAYS = 91


@dataclass
class Batch:
    number: int
    seed: int
    today: dt.date
    namespace: str  # the learners' pseudonym namespace: each batch has its own learners
    platform: SyntheticPlatform
    events: int


def batch_seed(seed: int, number: int) -> int:
    """An independent stream per batch, the same for the same (seed, number)."""
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def batches(
    *, events: int, seed: int, today: dt.date, batch_events: int = 2_000_000
) -> Iterator[Batch]:
    """Platforms holding `events` click rows in all (each row one event), one at a time."""
    if events < 1 or batch_events < 1:
        raise ValueError("events and batch_events must be at least 1")
    remaining, number = events, 0
    while remaining > 0:
        wanted = min(remaining, batch_events)
        # More learners than the average needs (their events vary): the batch is cut to size.
        learners = max(1, math.ceil(wanted / EVENTS_PER_LEARNER * 1.25))
        ends = today - dt.timedelta(days=(number * QUARTER_DAYS) % (YEARS * 365))
        sub = batch_seed(seed, number)
        platform = generate(
            learners=learners, courses=BATCH_COURSES, days=BATCH_DAYS, seed=sub, today=ends
        )
        _rekey(platform, f"G{seed}B{number}")
        n = _cut(platform, wanted)
        yield Batch(number, sub, ends, f"scale{seed}b{number}", platform, n)
        remaining -= n
        number += 1


def _rekey(platform: SyntheticPlatform, prefix: str) -> None:
    """Module codes `DM<n>` become `<prefix>M<n>`: every batch's runs are new course runs."""

    def module(code: str) -> str:
        return f"{prefix}M{code.removeprefix('DM')}"

    for frame in platform.tables.values():
        if "code_module" in frame.columns:
            frame["code_module"] = frame["code_module"].map(module)

    def key(k: str) -> str:
        code, presentation = k.split("_", 1)
        return f"{module(code)}_{presentation}"

    platform.start_dates = {key(k): v for k, v in platform.start_dates.items()}
    platform.titles = {key(k): v for k, v in platform.titles.items()}
    platform.chunks = [VleChunk(course_id=key(c.course_id), rows=c.rows) for c in platform.chunks]


def _cut(platform: SyntheticPlatform, limit: int) -> int:
    """Keep the first `limit` click rows (runs in order); the rows kept."""
    kept, chunks = 0, []
    for chunk in platform.chunks:
        rows = chunk.rows.iloc[: max(0, limit - kept)]
        chunks.append(VleChunk(course_id=chunk.course_id, rows=rows.reset_index(drop=True)))
        kept += len(rows)
    platform.chunks = chunks
    return kept
