"""Click features as of a cut-off: volume, recency, regularity, trend, activity types,
and the weekly sequence."""

from __future__ import annotations

import numpy as np
import pandas as pd

from churn.model.prepared import (
    GROUPS,
    KNOWN_TYPES,
    PRE_START_DAYS,
    SEQ_CHANNELS,
    Prepared,
    bincount,
)


def activity_features(
    p: Prepared, c: int, reg: np.ndarray, n_weeks: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Context, volume, recency, regularity, trend and per-type features from the clicks
    dated in ``[-PRE_START_DAYS, c)``, and the weekly sequence (learner x week x channel;
    the submission and due channels are filled by `assessment_features`).

    Long because each feature is a few vectorised lines over the same click arrays; splitting it
    would pass those arrays around for no gain.
    """
    n = p.n
    e = p.enrol
    m = (p.a_day < c) & (p.a_day >= -PRE_START_DAYS)
    row, day, clicks = p.a_row[m], p.a_day[m], p.a_clicks[m]
    f: dict[str, np.ndarray] = {}
    total = bincount(row, clicks, n)
    f["cutoff_day"] = np.full(n, float(c))
    f["course_length"] = p.course_length
    f["elapsed_fraction"] = c / p.course_length
    f["days_registered_before_start"] = -reg
    f["num_of_prev_attempts"] = pd.to_numeric(e["num_of_prev_attempts"], errors="coerce").to_numpy(
        float
    )
    f["studied_credits"] = pd.to_numeric(e["studied_credits"], errors="coerce").to_numpy(float)
    f["total_clicks"] = total
    for k in (7, 14, 28):
        w = day >= c - k
        f[f"clicks_last_{k}d"] = bincount(row[w], clicks[w], n)
    w = day < 0
    f["clicks_before_start"] = bincount(row[w], clicks[w], n)

    dm = (p.d_day < c) & (p.d_day >= -PRE_START_DAYS)
    d_row, d_day = p.d_row[dm], p.d_day[dm]
    active = bincount(d_row, None, n)
    f["active_days"] = active
    f["active_days_last_14d"] = bincount(d_row[d_day >= c - 14], None, n)
    f["active_days_last_28d"] = bincount(d_row[d_day >= c - 28], None, n)
    last = np.full(n, np.nan)
    first = np.full(n, np.nan)
    if len(d_row):
        # d_row/d_day are sorted by row then day: the last/first entry per row
        ends = np.r_[np.flatnonzero(np.diff(d_row)), len(d_row) - 1]
        starts = np.r_[0, ends[:-1] + 1]
        last[d_row[ends]] = d_day[ends]
        first[d_row[starts]] = d_day[starts]
    never = np.isnan(last)
    # When never active: days since registration (clipped to the observed window).
    reg_start = np.clip(np.nan_to_num(reg, nan=-PRE_START_DAYS), -PRE_START_DAYS, c)
    f["days_since_last_activity"] = np.where(never, c - reg_start, c - last)
    f["never_active"] = never.astype(float)
    f["first_active_day"] = first
    window = np.maximum(c - np.maximum(reg_start, -PRE_START_DAYS), 1.0)
    f["active_day_fraction"] = active / window
    # gaps between consecutive active days (and the trailing gap up to the cut-off)
    same = np.r_[False, d_row[1:] == d_row[:-1]]
    gaps = np.r_[0, np.diff(d_day)]
    g_rows, g_vals = d_row[same], gaps[same].astype(float)
    longest = np.zeros(n)
    if len(g_rows):
        np.maximum.at(longest, g_rows, g_vals)
    f["longest_gap_days"] = np.maximum(longest, f["days_since_last_activity"])
    n_gaps = bincount(g_rows, None, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        f["mean_gap_days"] = np.where(n_gaps > 0, bincount(g_rows, g_vals, n) / n_gaps, np.nan)

    # weekly sequence: week 0 = days [c-7, c)
    week = (c - 1 - day) // 7
    wm = week < n_weeks
    n_ch = len(SEQ_CHANNELS)
    seq = np.zeros((n, n_weeks, n_ch))
    grp = p.a_group[m]
    flat_index = (row[wm] * n_weeks + week[wm]) * n_ch + grp[wm]
    seq.reshape(-1)[:] += np.bincount(flat_index, weights=clicks[wm], minlength=n * n_weeks * n_ch)
    d_week = (c - 1 - d_day) // 7
    dw = d_week < n_weeks
    ch = SEQ_CHANNELS.index("active_days")
    seq[:, :, ch] = np.bincount(d_row[dw] * n_weeks + d_week[dw], minlength=n * n_weeks).reshape(
        n, n_weeks
    )
    week_start = c - 7 * (np.arange(n_weeks) + 1)
    week_end = week_start + 7
    seq[:, :, SEQ_CHANNELS.index("observed")] = (week_end > -PRE_START_DAYS)[None, :]
    weekly_total = seq[:, :, : len(GROUPS)].sum(axis=2)
    obs_weeks = int(min(n_weeks, max(1, np.ceil((c + PRE_START_DAYS) / 7))))
    wt = weekly_total[:, :obs_weeks]
    with np.errstate(invalid="ignore", divide="ignore"):
        f["weekly_clicks_cv"] = np.where(
            wt.mean(axis=1) > 0, wt.std(axis=1) / wt.mean(axis=1), np.nan
        )
    f["active_weeks_fraction"] = (wt > 0).mean(axis=1)
    # trend: last 14 days against the daily rate before them
    before_days = max(c - 14 + PRE_START_DAYS, 7)
    before = total - f["clicks_last_14d"]
    f["trend_clicks_14d"] = np.log1p(f["clicks_last_14d"]) - np.log1p(before * 14 / before_days)
    before_active = active - f["active_days_last_14d"]
    f["trend_active_days_14d"] = f["active_days_last_14d"] / 14 - before_active / before_days
    w = day >= c - 3
    f["clicks_last_3d"] = bincount(row[w], clicks[w], n)
    w = (day >= 0) & (day < 14)
    f["clicks_first_14d"] = bincount(row[w], clicks[w], n)
    # consecutive active weeks up to the cut-off
    active_weeks = wt > 0
    streak = np.argmin(active_weeks, axis=1).astype(float)
    streak[active_weeks.all(axis=1)] = active_weeks.shape[1]
    f["active_streak_weeks"] = streak

    n_types = len(KNOWN_TYPES) + 1
    per_type = np.bincount(row * n_types + p.a_type[m], weights=clicks, minlength=n * n_types)
    per_type = per_type.reshape(n, n_types)
    for i, t in enumerate([*KNOWN_TYPES, "other"]):
        f[f"clicks_type_{t}"] = per_type[:, i]
    per_group = seq[:, :, : len(GROUPS)].sum(axis=1)  # within the sequence window
    group_total = per_group.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        for i, g in enumerate(GROUPS):
            f[f"share_{g}"] = np.where(group_total > 0, per_group[:, i] / group_total, np.nan)

    return f, seq
