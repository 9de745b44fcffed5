"""A small synthetic OULAD-format dataset for churn tests (no real data needed).

Learners have a latent engagement; withdrawers fade out before their
unregistration day and stop afterwards, so early behaviour predicts churn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from eduplatform.ml.data import LearningData
from eduplatform.ml.datasets.oulad import REQUIRED_COLUMNS, load_oulad

TYPES = ["homepage", "oucontent", "forumng", "quiz", "resource"]
TMA_DAYS = [20, 50, 90, 130, 170]


def synthetic_tables(
    n_learners: int = 120,
    modules: tuple[str, ...] = ("AAA", "BBB"),
    presentations: tuple[str, ...] = ("2013B", "2013J", "2014B"),
    length: int = 240,
    seed: int = 0,
) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    courses, assessments, vle, info, reg, sa, svle = [], [], [], [], [], [], []
    site_id, ass_id, student_id = 1000, 1, 1
    for module in modules:
        for pres in presentations:
            courses.append((module, pres, length))
            sites = []
            for t in TYPES:
                vle.append((site_id, module, pres, t, None, None))
                sites.append(site_id)
                site_id += 1
            ids = []
            for day in TMA_DAYS:
                assessments.append((module, pres, ass_id, "TMA", day, 20.0))
                ids.append(ass_id)
                ass_id += 1
            assessments.append((module, pres, ass_id, "Exam", None, 100.0))
            ass_id += 1
            n = n_learners
            learners = np.arange(student_id, student_id + n)
            student_id += n
            engagement = rng.normal(0, 1, n)
            p_withdraw = 1 / (1 + np.exp(1.0 + 1.8 * engagement))
            withdraw = rng.random(n) < p_withdraw
            unreg = np.where(withdraw, rng.integers(5, 200, n), np.nan)
            registered = -rng.integers(5, 120, n)
            days = np.arange(-10, length)
            base = 1 / (1 + np.exp(-(0.3 + 1.2 * engagement)))
            fade = np.ones((n, len(days)))
            for i in np.flatnonzero(withdraw):
                # activity fades over the 40 days before unregistration, then stops
                rel = (unreg[i] - days) / 40.0
                fade[i] = np.clip(rel, 0, 1)
            p_active = base[:, None] * fade * 0.6
            active = rng.random((n, len(days))) < p_active
            li, di = np.nonzero(active)
            n_rows = len(li)
            site = rng.integers(0, len(sites), n_rows)
            clicks = rng.poisson(3 + 2 * np.clip(engagement[li], 0, None)) + 1
            svle.append(
                pd.DataFrame(
                    {
                        "code_module": module,
                        "code_presentation": pres,
                        "id_student": learners[li],
                        "id_site": np.array(sites)[site],
                        "date": days[di],
                        "sum_click": clicks,
                    }
                )
            )
            for k, aid in enumerate(ids):
                due = TMA_DAYS[k]
                alive = ~(unreg <= due)
                p_sub = 1 / (1 + np.exp(-(1.5 + 1.5 * engagement)))
                sub = alive & (rng.random(n) < p_sub)
                late = rng.integers(-5, 4, n)
                score = np.clip(rng.normal(68 + 10 * engagement, 10), 0, 100).round()
                for j in np.flatnonzero(sub):
                    sa.append((aid, int(learners[j]), int(due + late[j]), 0, float(score[j])))
            result = np.where(withdraw, "Withdrawn", np.where(engagement > -0.3, "Pass", "Fail"))
            genders = rng.choice(["M", "F"], n)
            edu = rng.choice(["A Level or Equivalent", "Lower Than A Level", "HE Qualification"], n)
            imd = rng.choice(["0-10%", "10-20", "50-60%", None], n)
            age = rng.choice(["0-35", "35-55", "55<="], n)
            for j in range(n):
                info.append(
                    (
                        module,
                        pres,
                        int(learners[j]),
                        genders[j],
                        "Scotland",
                        edu[j],
                        imd[j],
                        age[j],
                        int(rng.integers(0, 2)),
                        int(rng.choice([60, 120])),
                        "N",
                        result[j],
                    )
                )
                reg.append(
                    (
                        module,
                        pres,
                        int(learners[j]),
                        float(registered[j]),
                        None if np.isnan(unreg[j]) else float(unreg[j]),
                    )
                )
    return {
        "courses": pd.DataFrame(courses, columns=REQUIRED_COLUMNS["courses"]),
        "assessments": pd.DataFrame(assessments, columns=REQUIRED_COLUMNS["assessments"]),
        "vle": pd.DataFrame(vle, columns=REQUIRED_COLUMNS["vle"]),
        "studentInfo": pd.DataFrame(info, columns=REQUIRED_COLUMNS["studentInfo"]),
        "studentRegistration": pd.DataFrame(reg, columns=REQUIRED_COLUMNS["studentRegistration"]),
        "studentAssessment": pd.DataFrame(sa, columns=REQUIRED_COLUMNS["studentAssessment"]),
        "studentVle": pd.concat(svle, ignore_index=True),
    }


def write_oulad_folder(folder: Path, **kwargs) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in synthetic_tables(**kwargs).items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def synthetic_learning_data(tmp_path: Path, **kwargs) -> LearningData:
    return load_oulad(write_oulad_folder(Path(tmp_path) / "oulad", **kwargs))
