"""A deterministic synthetic platform in OULAD's table shapes (the demo seed and test data).

Weekly content releases, assessments every few weeks, cohorts that differ in
engagement, and learners whose activity decays in the weeks before they drop
out. Output is the same tables `eduplatform.ml.datasets.oulad.read_tables` returns plus
per-course click chunks, so the demo goes through the OULAD import path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from eduplatform.ml.datasets.oulad import REQUIRED_COLUMNS, VleChunk

ACTIVITY_TYPES = ["oucontent", "resource", "quiz", "forumng", "url", "subpage"]
REGIONS = ["North Region", "Scotland", "Wales", "London Region", "South Region", "Ireland"]
EDUCATION = ["A Level or Equivalent", "Lower Than A Level", "HE Qualification"]
IMD = [
    "0-10%",
    "10-20%",
    "20-30%",
    "30-40%",
    "40-50%",
    "50-60%",
    "60-70%",
    "70-80%",
    "80-90%",
    "90-100%",
]
AGES = ["0-35", "35-55", "55<="]
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Ela", "Finn", "Grace", "Hugo", "Isla", "Jon", "Kai", "Lena"]
LAST = ["Archer", "Bose", "Costa", "Diaz", "Evans", "Fraser", "Gupta", "Hale", "Ito", "Jones"]


@dataclass
class SyntheticPlatform:
    tables: dict[str, pd.DataFrame]
    chunks: list[VleChunk]
    start_dates: dict[str, dt.date]
    titles: dict[str, str]
    personal: dict[int, tuple[str, str]]

    def chunk_source(self, keys: set[str]) -> list[VleChunk]:
        return [c for c in self.chunks if c.course_id in keys]


def generate(
    *,
    learners: int = 400,
    courses: int = 3,
    days: int = 120,
    seed: int = 7,
    today: dt.date | None = None,
    weeks: int = 30,
) -> SyntheticPlatform:
    """Build the platform.

    1. Course runs start a week apart so that `days` of history reach `today`.
    2. Each week releases a handful of items; TMAs fall every five weeks.
    3. Each learner joins one or two runs with a cohort-dependent engagement
       level and, for some, a withdrawal day; activity fades over the three
       weeks before it and stops after it.
    4. Clicks favour the items released in the current week.

    Long because the platform is drawn in one pass (courses, learners, engagement, assessments)
    from one random stream; splitting it would thread that stream and a dozen arrays through
    helpers.
    """
    rng = np.random.default_rng(seed)
    today = today or dt.date(2026, 11, 28)
    length = weeks * 7
    course_rows, vle_rows, assessment_rows = [], [], []
    start_dates: dict[str, dt.date] = {}
    titles: dict[str, str] = {}
    site = 100_000
    assessment_id = 10_000
    item_weeks: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for c in range(courses):
        module, presentation = f"DM{c + 1}", f"{today.year}{'ABCDEFGHIJ'[c % 10]}"
        key = f"{module}_{presentation}"
        start_dates[key] = today - dt.timedelta(days=days - 7 * c)
        titles[key] = [
            "Data Science Foundations",
            "Statistics in Practice",
            "Web Programming",
            "Linear Algebra",
            "Machine Learning",
            "Academic Writing",
        ][c % 6]
        course_rows.append((module, presentation, length))
        sites, release = [], []
        for kind in ("homepage", "forumng"):
            vle_rows.append((site, module, presentation, kind, np.nan, np.nan))
            sites.append(site)
            release.append(0)
            site += 1
        for week in range(weeks):
            for _ in range(int(rng.integers(3, 7))):
                kind = ACTIVITY_TYPES[int(rng.integers(len(ACTIVITY_TYPES)))]
                vle_rows.append((site, module, presentation, kind, week, week + 1))
                sites.append(site)
                release.append(week)
                site += 1
        item_weeks[key] = (np.array(sites), np.array(release))
        for week in range(4, weeks, 5):
            assessment_rows.append((module, presentation, assessment_id, "TMA", week * 7 + 5, 20.0))
            assessment_id += 1
        assessment_rows.append((module, presentation, assessment_id, "Exam", length - 3, 100.0))
        assessment_id += 1

    info_rows, reg_rows, sub_rows = [], [], []
    chunks: dict[str, list[tuple[np.ndarray, ...]]] = {k: [] for k in start_dates}
    personal: dict[int, tuple[str, str]] = {}
    course_keys = list(start_dates)
    assessments = pd.DataFrame(assessment_rows, columns=REQUIRED_COLUMNS["assessments"])
    due_by_course: dict[str, list[tuple[int, str, int]]] = {}
    for module, presentation, a_id, kind, due, _weight in assessment_rows:
        due_by_course.setdefault(f"{module}_{presentation}", []).append((a_id, kind, due))
    for learner in range(learners):
        student = 500_000 + learner
        first, last = FIRST[learner % len(FIRST)], LAST[(learner // len(FIRST)) % len(LAST)]
        personal[student] = (
            f"{first} {last}",
            f"{first.lower()}.{last.lower()}{learner}@example.org",
        )
        gender = "F" if rng.random() < 0.5 else "M"
        region = REGIONS[int(rng.integers(len(REGIONS)))]
        education = EDUCATION[int(rng.integers(len(EDUCATION)))]
        imd = IMD[int(rng.integers(len(IMD)))]
        age = AGES[int(rng.choice(3, p=[0.6, 0.3, 0.1]))]
        n_courses = 1 if rng.random() < 0.8 or courses == 1 else 2
        for key in rng.choice(course_keys, size=n_courses, replace=False):
            module, presentation = key.split("_")
            cohort = course_keys.index(key)
            start = start_dates[key]
            elapsed = (today - start).days  # last day with data, relative to start
            engagement = float(rng.lognormal(mean=0.0 - 0.15 * cohort, sigma=0.6))
            withdraw_p = 0.45 / (1 + engagement)
            withdraw_day = int(rng.integers(5, length)) if rng.random() < withdraw_p else None
            registered = int(rng.integers(-40, 5))
            unregistered = (
                withdraw_day if withdraw_day is not None and withdraw_day <= elapsed else None
            )
            if elapsed >= length:
                if withdraw_day is not None:
                    result = "Withdrawn"
                else:
                    result = (
                        "Distinction" if engagement > 2 else "Pass" if engagement > 0.5 else "Fail"
                    )
            else:
                result = "Withdrawn" if unregistered is not None else ""
            info_rows.append(
                (
                    module,
                    presentation,
                    student,
                    gender,
                    region,
                    education,
                    imd,
                    age,
                    int(rng.integers(0, 2)),
                    60,
                    "N",
                    result,
                )
            )
            reg_rows.append(
                (
                    module,
                    presentation,
                    student,
                    registered,
                    unregistered if unregistered is not None else np.nan,
                )
            )
            last_day = min(elapsed, length - 1, withdraw_day if withdraw_day is not None else 10**6)
            day = np.arange(max(registered, -10), last_day + 1)
            if len(day) == 0:
                continue
            rate = np.clip(0.12 + 0.25 * engagement, 0.05, 0.9) * np.ones(len(day))
            if withdraw_day is not None:
                fade = np.clip((withdraw_day - day) / 21.0, 0.05, 1.0)
                rate = rate * fade
            active = day[rng.random(len(day)) < rate]
            if len(active) == 0:
                continue
            site_ids, release_weeks = item_weeks[key]
            visits = rng.poisson(2.0 + engagement, size=len(active)) + 1
            day_rep = np.repeat(active, visits)
            week_now = np.maximum(day_rep // 7, 0)
            # Pick an item released on or before the current week, mostly this
            # week's. Sites are sorted by release week, so "released by week w"
            # is a prefix and "released in week w" a slice of it.
            released_by = np.searchsorted(release_weeks, week_now, side="right")
            released_before = np.searchsorted(release_weeks, week_now, side="left")
            this_week = released_by - released_before
            draw = rng.random(len(day_rep))
            use_current = (rng.random(len(day_rep)) < 0.6) & (this_week > 0)
            index = np.where(
                use_current,
                released_before + (draw * this_week).astype(np.int64),
                (draw * released_by).astype(np.int64),
            )
            picked = site_ids[index]
            clicks = rng.geometric(0.4, size=len(day_rep))
            chunks[key].append((np.full(len(picked), student), picked, day_rep, clicks))
            for a_id, kind, due in due_by_course[key]:
                if due > last_day + 3 or (kind == "Exam" and elapsed < length):
                    continue
                if rng.random() > min(0.97, 0.5 + 0.3 * engagement):
                    continue
                submitted = due + int(rng.integers(-6, 4))
                score = float(np.clip(rng.normal(45 + 15 * engagement, 12), 0, 100))
                sub_rows.append((a_id, student, submitted, 0, round(score)))

    tables = {
        "courses": pd.DataFrame(course_rows, columns=REQUIRED_COLUMNS["courses"]),
        "assessments": assessments,
        "vle": pd.DataFrame(vle_rows, columns=REQUIRED_COLUMNS["vle"]),
        "studentInfo": pd.DataFrame(info_rows, columns=REQUIRED_COLUMNS["studentInfo"]),
        "studentRegistration": pd.DataFrame(
            reg_rows, columns=REQUIRED_COLUMNS["studentRegistration"]
        ),
        "studentAssessment": pd.DataFrame(sub_rows, columns=REQUIRED_COLUMNS["studentAssessment"]),
    }
    vle_chunks = []
    for key, parts in chunks.items():
        columns: list[np.ndarray | list[int]] = (
            [np.concatenate(col) for col in zip(*parts, strict=True)] if parts else [[]] * 4
        )
        rows = pd.DataFrame(
            {
                "learner_id": np.asarray(columns[0], np.int64),
                "item_id": np.asarray(columns[1], np.int64),
                "day": np.asarray(columns[2], np.int32),
                "clicks": np.asarray(columns[3], np.int32),
            }
        )
        vle_chunks.append(VleChunk(course_id=key, rows=rows))
    return SyntheticPlatform(
        tables=tables, chunks=vle_chunks, start_dates=start_dates, titles=titles, personal=personal
    )


def write_oulad_folder(platform: SyntheticPlatform, folder: Path) -> None:
    """Write the platform as an OULAD-format folder (one gzipped click file per run)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in platform.tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    (folder / "studentVle").mkdir(exist_ok=True)
    for chunk in platform.chunks:
        module, presentation = chunk.course_id.split("_")
        rows = chunk.rows.rename(
            columns={
                "learner_id": "id_student",
                "item_id": "id_site",
                "day": "date",
                "clicks": "sum_click",
            }
        )
        rows.insert(0, "code_presentation", presentation)
        rows.insert(0, "code_module", module)
        rows.to_csv(folder / "studentVle" / f"studentVle_{chunk.course_id}.csv.gz", index=False)
