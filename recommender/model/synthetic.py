"""Synthetic course runs with a planted timeline pattern, for tests and benchmarks.

Content item k of a run is released at day `k * days_per_item`; each learner
works through the items in order at the cohort's speed but with a personal lag
of 0-3 weeks, opening each item (with probability `p_visit`) on the day it
reaches it and sometimes once more a few days later. A few "hub" items (home
page, forum) are opened by everyone all the time. So what a learner opens next
is "the items after the ones they just opened", which a model of the learner's
position on the course timeline can find and the cohort's recent popularity
(dominated by the on-time learners) cannot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from eduplatform.ml.data import (
    ACTIVITY_COLUMNS,
    ASSESSMENT_COLUMNS,
    COURSE_COLUMNS,
    ENROLMENT_COLUMNS,
    SUBMISSION_COLUMNS,
    LearningData,
)

if TYPE_CHECKING:
    from recommender.model.predictor import Recommender
    from recommender.model.timeline import Params

TYPES = ("resource", "oucontent", "url", "quiz", "subpage")
HUB_TYPES = ("homepage", "forumng")


def synthetic_learning_data(
    n_items: int = 60,
    n_learners: int = 200,
    n_days: int = 70,
    seed: int = 0,
    course_ids: tuple[str, ...] = ("SYN_2024A",),
    n_hubs: int = 2,
    p_visit: float = 0.8,
    max_lag_weeks: int = 3,
    first_item_id: int = 1_000_000,
    first_learner_id: int = 1,
) -> LearningData:
    """Long because the generator draws the catalogue, the learners and their clicks from one
    random stream in order; splitting it would thread that stream and its arrays through
    helpers.
    """
    rng = np.random.default_rng(seed)
    courses, enrol, items, clicks = [], [], [], []
    item_base, learner_base = first_item_id, first_learner_id
    for cid in course_ids:
        n_seq = n_items - n_hubs
        ids = np.arange(item_base, item_base + n_items, dtype=np.int64)
        item_base += n_items
        release = np.floor(np.arange(n_seq) * (n_days - 7) / max(n_seq, 1)).astype(np.int64)
        types = [TYPES[k % len(TYPES)] for k in range(n_seq)] + [
            HUB_TYPES[h % len(HUB_TYPES)] for h in range(n_hubs)
        ]
        week = np.r_[release // 7, np.full(n_hubs, np.nan)].astype(float)
        items.append(
            pd.DataFrame(
                {
                    "course_id": cid,
                    "item_id": ids,
                    "activity_type": types,
                    "week_from": week,
                    "week_to": week,
                }
            )
        )
        learners = np.arange(learner_base, learner_base + n_learners, dtype=np.int64)
        learner_base += n_learners
        lag = rng.integers(0, max_lag_weeks + 1, n_learners) * 7
        # sequential items: learner x item visit day
        # sequential items: each learner opens a random p_visit share of them (sparse draw)
        draws = round(n_learners * n_seq * p_visit)
        key = np.unique(
            rng.integers(0, n_learners, draws).astype(np.int64) * n_seq
            + rng.integers(0, n_seq, draws)
        )
        u, k = key // n_seq, key % n_seq
        d = release[k] + lag[u] + rng.integers(0, 2, len(u))
        ok = d < n_days
        u, k, d = u[ok], k[ok], d[ok]
        again = rng.random(len(u)) < 0.3
        u2, k2 = u[again], k[again]
        d2 = d[again] + rng.integers(1, 5, again.sum())
        keep2 = d2 < n_days
        lu = np.r_[u, u2[keep2]]
        lk = np.r_[k, k2[keep2]]
        ld = np.r_[d, d2[keep2]]
        # hubs: every learner, on ~40% of the days
        hu, hd = np.nonzero(rng.random((n_learners, n_days)) < 0.4)
        hk = n_seq + rng.integers(0, max(n_hubs, 1), len(hu)) if n_hubs else np.zeros(0, int)
        if n_hubs:
            lu, lk, ld = np.r_[lu, hu], np.r_[lk, hk], np.r_[ld, hd]
        frame = pd.DataFrame(
            {
                "course_id": cid,
                "learner_id": learners[lu],
                "item_id": ids[lk],
                "day": ld.astype(np.int32),
                "clicks": rng.integers(1, 6, len(lu)).astype(np.int32),
            }
        )
        frame = frame.groupby(["course_id", "learner_id", "item_id", "day"], as_index=False)[
            "clicks"
        ].sum()
        clicks.append(frame)
        courses.append(
            {
                "course_id": cid,
                "module": str(cid).split("_")[0],
                "presentation": str(cid).split("_")[-1],
                "length_days": n_days,
            }
        )
        e = pd.DataFrame({c: [None] * n_learners for c in ENROLMENT_COLUMNS})
        e["course_id"] = cid
        e["learner_id"] = learners
        e["registered_day"] = -10.0
        e["unregistered_day"] = np.nan
        e["final_result"] = ""
        e["num_of_prev_attempts"] = 0.0
        e["studied_credits"] = 60.0
        enrol.append(e)
    item_activity = pd.concat(clicks, ignore_index=True)
    item_frame = pd.concat(items, ignore_index=True)
    typed = item_activity.merge(item_frame[["course_id", "item_id", "activity_type"]])
    activity = typed.groupby(["course_id", "learner_id", "day", "activity_type"], as_index=False)[
        "clicks"
    ].sum()[ACTIVITY_COLUMNS]
    data = LearningData(
        courses=pd.DataFrame(courses, columns=COURSE_COLUMNS),
        enrolments=pd.concat(enrol, ignore_index=True),
        activity=activity,
        item_activity=item_activity,
        items=item_frame,
        assessments=pd.DataFrame({c: [] for c in ASSESSMENT_COLUMNS}),
        submissions=pd.DataFrame({c: [] for c in SUBMISSION_COLUMNS}),
    )
    data.validate()
    return data


def build_synthetic(
    n_items: int,
    seed: int = 0,
    n_learners: int = 2000,
    n_days: int = 70,
    train: bool = False,
    config: Params | None = None,
) -> Recommender:
    """A `Recommender` over one synthetic course run of `n_items` items.

    For benchmarks of serving speed and size (e.g. the compression step at
    50,000 items): with `train=False` the network keeps its seeded random
    initialisation (inputs unscaled), the run state is built from the synthetic
    clicks as in production. The course run is "SYN_BENCH" and "now" is day `n_days`.
    """
    import torch

    from recommender.model.predictor import Recommender
    from recommender.model.ranker_net import RankerScoringNet, Standardiser
    from recommender.model.run_state import RunState
    from recommender.model.timeline import Params, runs_from_data

    data = synthetic_learning_data(
        n_items=n_items,
        n_learners=n_learners,
        n_days=n_days,
        seed=seed,
        course_ids=("SYN_BENCH",),
        n_hubs=min(4, max(n_items // 20, 1)),
        p_visit=min(0.8, 80.0 / max(n_items, 1)),  # ~80 items per learner, as in OULAD
    )
    config = config or Params(seed=seed)
    if train:
        return Recommender.fit(data, n_days, config)
    runs = runs_from_data(data, before_day=n_days)
    torch_seed(seed)
    net = RankerScoringNet()
    shape = net.shape()
    width = shape["n_item_features"] + shape["n_learner_features"] + shape["n_pair_features"]
    scaler = Standardiser(torch.zeros(width), torch.ones(width))
    states = [RunState.build(r, n_days, config.half_lives) for r in runs]
    return Recommender(net, scaler, states, config, {"synthetic": True, "trained": False})


def torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
