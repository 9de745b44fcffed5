"""Assessment features as of a cut-off: due, submitted, late, missed, scores, banked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.model.prepared import (
    SEQ_CHANNELS,
    Prepared,
    bincount,
)


def assessment_features(
    p: Prepared, c: int, n_weeks: int, seq: np.ndarray
) -> dict[str, np.ndarray]:
    """Assessment features from the assessments due before ``c`` and the submissions made
    before it; fills the sequence's "submitted" and "due" channels in place.

    Long because each feature is a few vectorised lines over the same submission frame;
    splitting it would pass that frame around for no gain.
    """
    n = p.n
    f: dict[str, np.ndarray] = {}
    ass = p.assessments
    due_ass = ass[ass["due_day"] < c]
    by_course = due_ass.groupby("course_id")
    course_pos = {cid: i for i, cid in enumerate(p.course_codes)}
    n_courses = len(p.course_codes)
    due_count = np.zeros(n_courses)
    due_weight = np.zeros(n_courses)
    last_due = np.full(n_courses, np.nan)
    for cid, cnt in by_course.size().items():  # loop over course runs, not learners
        if cid in course_pos:
            due_count[course_pos[cid]] = cnt
    for cid, wsum in by_course["weight"].sum().items():
        if cid in course_pos:
            due_weight[course_pos[cid]] = wsum
    for cid, mx in by_course["due_day"].max().items():
        if cid in course_pos:
            last_due[course_pos[cid]] = mx
    ci = p.course_index
    sm = (p.s_due < c) & (p.s_sub < c)
    s_row = p.s_row[sm]
    # one submission per learner x assessment
    sdf = pd.DataFrame(
        {
            "row": s_row,
            "ass": p.s_ass[sm],
            "sub": p.s_sub[sm],
            "due": p.s_due[sm],
            "w": p.s_weight[sm],
            "score": p.s_score[sm],
            "tma": p.s_tma[sm],
            "banked": p.s_banked[sm],
        }
    ).drop_duplicates(["row", "ass"], keep="last")
    sdf = sdf.sort_values(["row", "sub"], kind="stable")
    sr = sdf["row"].to_numpy(np.int64)
    submitted = bincount(sr, None, n)
    f["assessments_due"] = due_count[ci]
    f["assessments_submitted"] = submitted
    f["assessments_missed"] = np.maximum(due_count[ci] - submitted, 0)
    f["assessments_late"] = bincount(sr, (sdf["sub"] > sdf["due"]).to_numpy(float), n)
    with np.errstate(invalid="ignore", divide="ignore"):
        f["submitted_fraction"] = np.where(due_count[ci] > 0, submitted / due_count[ci], np.nan)
        f["missed_weight"] = np.maximum(due_weight[ci] - bincount(sr, sdf["w"].to_numpy(), n), 0)
        has_score = sdf["score"].notna().to_numpy()
        sc = sdf["score"].fillna(0).to_numpy()
        n_sc = bincount(sr[has_score], None, n)
        f["mean_score"] = np.where(n_sc > 0, bincount(sr, sc * has_score, n) / n_sc, np.nan)
        w = sdf["w"].to_numpy() * has_score
        wsum = bincount(sr, w, n)
        f["weighted_score"] = np.where(wsum > 0, bincount(sr, sc * w, n) / wsum, f["mean_score"])
        scored_rows = sdf[has_score]
        last_score = np.full(n, np.nan)
        min_score = np.full(n, np.nan)
        if len(scored_rows):
            g = scored_rows.groupby("row")["score"]
            idx = g.last().index.to_numpy(np.int64)
            last_score[idx] = g.last().to_numpy()
            min_score[idx] = g.min().to_numpy()
        f["last_score"] = last_score
        f["min_score"] = min_score
        f["mean_days_early"] = np.where(
            submitted > 0,
            bincount(sr, (sdf["due"] - sdf["sub"]).to_numpy(), n) / submitted,
            np.nan,
        )
    last_sub = np.full(n, np.nan)
    if len(sdf):
        gl = sdf.groupby("row")["sub"].max()
        last_sub[gl.index.to_numpy(np.int64)] = gl.to_numpy()
    f["days_since_last_submission"] = c - last_sub
    # tutor-marked (TMA) vs computer-marked and banked (carried over from an earlier attempt)
    is_tma = sdf["tma"].to_numpy(bool)
    f["tma_submitted"] = bincount(sr[is_tma], None, n)
    f["cma_submitted"] = bincount(sr[~is_tma], None, n)
    tma_scored = has_score & is_tma
    n_tma = bincount(sr[tma_scored], None, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        f["tma_mean_score"] = np.where(
            n_tma > 0, bincount(sr[tma_scored], sc[tma_scored], n) / n_tma, np.nan
        )
    f["banked_submissions"] = bincount(sr, sdf["banked"].to_numpy(float), n)
    # the latest assessment due before c: submitted (before c)? its score
    latest = np.full(n_courses, None, dtype=object)
    if len(due_ass):
        ordered = due_ass.sort_values(["due_day", "assessment_id"], kind="stable")
        for cid, aid in ordered.groupby("course_id")["assessment_id"].last().items():
            if cid in course_pos:
                latest[course_pos[cid]] = aid
    latest_row = latest[ci]
    hit = sdf["ass"].to_numpy(object) == latest_row[sr]
    on_latest = np.zeros(n)
    on_latest[sr[hit]] = 1.0
    f["submitted_latest_due"] = np.where(pd.isna(latest_row), np.nan, on_latest)
    latest_score = np.full(n, np.nan)
    latest_score[sr[hit]] = sdf["score"].to_numpy(float)[hit]
    f["latest_due_score"] = latest_score
    f["days_since_last_due"] = c - last_due[ci]
    # sequence: submissions and due dates per week
    s_week = ((c - 1 - sdf["sub"].to_numpy()) // 7).astype(np.int64)
    ok = (s_week >= 0) & (s_week < n_weeks)
    seq[:, :, SEQ_CHANNELS.index("submitted")] = np.bincount(
        sr[ok] * n_weeks + s_week[ok], minlength=n * n_weeks
    ).reshape(n, n_weeks)
    due_week = np.zeros((n_courses, n_weeks))
    if len(due_ass):
        dc = due_ass["course_id"].map(course_pos)
        okc = dc.notna().to_numpy().copy()
        dwk = ((c - 1 - due_ass["due_day"].to_numpy()) // 7).astype(np.int64)
        okc &= (dwk >= 0) & (dwk < n_weeks)
        np.add.at(due_week, (dc.to_numpy()[okc].astype(np.int64), dwk[okc]), 1.0)
    seq[:, :, SEQ_CHANNELS.index("due")] = due_week[ci]

    return f
