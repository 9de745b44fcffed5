"""Churn label and features as of a cut-off day, from `LearningData`.

Who is scored at cut-off day ``c`` of a course run
    Learners enrolled at ``c``: registered before ``c`` (unknown registration date
    counts as registered) and not unregistered on or before ``c``. Runs whose
    length is ``<= c`` are skipped (they are over).

The label (``label_mode``)
    "oulad": positive = ``final_result == "Withdrawn"`` and the learner unregistered
        after ``c`` or the unregistration date is unknown (0.1 % of OULAD
        withdrawals have none; we count them as withdrawals, since final_result is
        authoritative and the learner was still enrolled at ``c`` by definition).
        Everything else (Pass, Distinction, Fail, in progress) is negative.
    "inactivity" (platform data, which has no final_result for in-progress
        learners): positive = unenrolled in ``(c, c + N]`` or no activity at all on
        days ``[c, c + N)``, N = ``inactivity_days``. The label is NaN (unknown) when
        the window is not fully observed, i.e. ``c + N`` is after ``horizon_day``
        (default: the last activity day seen in that course run).

No leakage
    Every feature is computed from rows dated strictly before ``c``: activity with
    ``day < c``, assessments with ``due_day < c`` and, of those, submissions with
    ``submitted_day < c``. Per-run ranks are taken over the learners enrolled at the
    start of day ``c`` (registered and not unregistered before ``c``), a set that
    also depends only on earlier data. Demographics are undated attributes.
    (Assessment scores are taken as known when submitted; in OULAD the marking
    date is not recorded.)

Everything is vectorised: rows are mapped once to an enrolment row number and
aggregated with ``np.bincount`` / pandas groupby, no Python loop over learners.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eduplatform.ml.data import LearningData

# OULAD activity types, grouped for the weekly sequence. Unknown types (from the
# platform, or new ones) fall into "other".
ACTIVITY_GROUPS: dict[str, str] = {
    "oucontent": "content",
    "resource": "content",
    "url": "content",
    "page": "content",
    "subpage": "content",
    "dualpane": "content",
    "folder": "content",
    "glossary": "content",
    "htmlactivity": "content",
    "sharedsubpage": "content",
    "dataplus": "content",
    "forumng": "forum",
    "ouwiki": "forum",
    "oucollaborate": "forum",
    "ouelluminate": "forum",
    "quiz": "quiz",
    "externalquiz": "quiz",
    "questionnaire": "quiz",
    "repeatactivity": "quiz",
    "homepage": "homepage",
}
KNOWN_TYPES: list[str] = [
    "homepage",
    "forumng",
    "subpage",
    "oucontent",
    "resource",
    "url",
    "quiz",
    "ouwiki",
    "externalquiz",
    "page",
    "oucollaborate",
    "ouelluminate",
    "glossary",
    "questionnaire",
    "dualpane",
    "folder",
    "dataplus",
]
GROUPS: list[str] = ["content", "forum", "quiz", "homepage", "other"]
SEQ_CHANNELS: list[str] = [*GROUPS, "active_days", "submitted", "due", "observed"]
DEMOGRAPHIC_CATEGORICALS = [
    "gender",
    "region",
    "highest_education",
    "imd_band",
    "age_band",
    "disability",
]
# How far before the course start activity is looked at (OULAD has clicks from day -25).
PRE_START_DAYS = 28
DEFAULT_WEEKS = 24
KEY_COLUMNS = ["course_id", "learner_id", "cutoff", "module"]

# Feature kinds, used by the preprocessor (see eduplatform.ml.preprocess):
# "count" -> missing is 0, log1p, clipped high; "rate" -> train median + missing
# indicator; "categorical" -> one-hot with a "missing" level.
COUNT, RATE, CATEGORICAL = "count", "rate", "categorical"


@dataclass
class ChurnFeatures:
    """One row per learner x course run x cut-off.

    ``frame`` holds the key columns (course_id, learner_id, cutoff, module), the flat
    features (``flat_columns``) and the weekly sequence flattened as
    ``seq_w{week:02d}_{channel}`` (``seq_columns``; week 0 = the 7 days just before
    the cut-off). ``labels`` is float (1 churn, 0 stays, NaN unknown).
    """

    frame: pd.DataFrame
    labels: np.ndarray
    flat_columns: list[str]
    seq_columns: list[str]
    kinds: dict[str, str]
    n_weeks: int
    channels: list[str] = field(default_factory=lambda: list(SEQ_CHANNELS))

    def __len__(self) -> int:
        return len(self.frame)

    def sequence(self) -> np.ndarray:
        """The weekly sequence as (n, weeks, channels), oldest week first."""
        return sequence_array(self.frame, self.n_weeks, self.channels)

    def subset(self, mask: np.ndarray) -> ChurnFeatures:
        mask = np.asarray(mask)
        return ChurnFeatures(
            frame=self.frame.loc[mask].reset_index(drop=True)
            if mask.dtype == bool
            else self.frame.iloc[mask].reset_index(drop=True),
            labels=self.labels[mask],
            flat_columns=self.flat_columns,
            seq_columns=self.seq_columns,
            kinds=self.kinds,
            n_weeks=self.n_weeks,
            channels=self.channels,
        )

    def labelled(self) -> ChurnFeatures:
        return self.subset(~np.isnan(self.labels))

    @staticmethod
    def concat(parts: list[ChurnFeatures]) -> ChurnFeatures:
        first = parts[0]
        return ChurnFeatures(
            frame=pd.concat([p.frame for p in parts], ignore_index=True),
            labels=np.concatenate([p.labels for p in parts]),
            flat_columns=first.flat_columns,
            seq_columns=first.seq_columns,
            kinds=first.kinds,
            n_weeks=first.n_weeks,
            channels=first.channels,
        )


def seq_column_names(n_weeks: int, channels: list[str] | None = None) -> list[str]:
    channels = channels or SEQ_CHANNELS
    return [f"seq_w{w:02d}_{c}" for w in range(n_weeks) for c in channels]


def sequence_array(frame: pd.DataFrame, n_weeks: int, channels: list[str] | None = None):
    """(n, weeks, channels) float32, oldest week first (ready for a GRU/conv)."""
    channels = channels or SEQ_CHANNELS
    cols = seq_column_names(n_weeks, channels)
    values = frame.reindex(columns=cols).to_numpy(np.float32, na_value=0.0)
    return values.reshape(len(frame), n_weeks, len(channels))[:, ::-1, :].copy()


def feature_kinds(n_weeks: int = DEFAULT_WEEKS) -> dict[str, str]:
    """Kind of every flat feature (the order is the column order)."""
    kinds: dict[str, str] = {
        "cutoff_day": RATE,
        "course_length": RATE,
        "elapsed_fraction": RATE,
        "days_registered_before_start": RATE,
        "num_of_prev_attempts": RATE,
        "studied_credits": RATE,
        "total_clicks": COUNT,
        "clicks_last_7d": COUNT,
        "clicks_last_14d": COUNT,
        "clicks_last_28d": COUNT,
        "clicks_before_start": COUNT,
        "active_days": COUNT,
        "active_days_last_14d": COUNT,
        "active_days_last_28d": COUNT,
        "days_since_last_activity": COUNT,
        "never_active": COUNT,
        "first_active_day": RATE,
        "active_day_fraction": RATE,
        "longest_gap_days": COUNT,
        "mean_gap_days": RATE,
        "weekly_clicks_cv": RATE,
        "active_weeks_fraction": RATE,
        "trend_clicks_14d": RATE,
        "trend_active_days_14d": RATE,
        "clicks_last_3d": COUNT,
        "clicks_first_14d": COUNT,
        "active_streak_weeks": COUNT,
    }
    for t in [*KNOWN_TYPES, "other"]:
        kinds[f"clicks_type_{t}"] = COUNT
    for g in GROUPS:
        kinds[f"share_{g}"] = RATE
    kinds.update(
        {
            "assessments_due": COUNT,
            "assessments_submitted": COUNT,
            "assessments_missed": COUNT,
            "assessments_late": COUNT,
            "submitted_fraction": RATE,
            "missed_weight": COUNT,
            "mean_score": RATE,
            "weighted_score": RATE,
            "last_score": RATE,
            "min_score": RATE,
            "mean_days_early": RATE,
            "days_since_last_submission": RATE,
            "days_since_last_due": RATE,
            "tma_submitted": COUNT,
            "cma_submitted": COUNT,
            "tma_mean_score": RATE,
            "banked_submissions": COUNT,
            "submitted_latest_due": RATE,
            "latest_due_score": RATE,
        }
    )
    for r in RANKED:
        kinds[f"rank_{r}"] = RATE
    kinds["run_median_clicks"] = RATE
    kinds["run_size"] = COUNT
    kinds["run_recent_withdrawal"] = RATE
    for c in DEMOGRAPHIC_CATEGORICALS:
        kinds[c] = CATEGORICAL
    return kinds


# Features ranked (percentile 0..1) within the same course run and cut-off.
RANKED = [
    "total_clicks",
    "clicks_last_14d",
    "clicks_last_28d",
    "active_days",
    "active_days_last_14d",
    "days_since_last_activity",
    "assessments_submitted",
    "mean_score",
    "weighted_score",
    "longest_gap_days",
    "mean_days_early",
    "clicks_last_7d",
]
# Features that are the same for every learner of a course run at a cut-off. With a
# handful of training runs a network reads them as run identifiers and extrapolates
# the memorised run base rates to new runs (docs/churn-model.md), so the model leaves
# them out by default (``ChurnSettings.exclude``); the peers still get them.
RUN_LEVEL = [
    "course_length",
    "elapsed_fraction",
    "assessments_due",
    "days_since_last_due",
    "run_median_clicks",
    "run_size",
    "run_recent_withdrawal",
]
# Window of `run_recent_withdrawal`: the share of the run's learners enrolled at
# ``c - RECENT_WITHDRAWAL_DAYS`` who unregistered in ``[c - RECENT_WITHDRAWAL_DAYS, c)``.
# It is what `RunPrior` reads to estimate the run's churn rate after ``c``.
RECENT_WITHDRAWAL_DAYS = 30


class _Prepared:
    """Rows of all frames mapped once to enrolment row numbers (reused per cut-off)."""

    def __init__(self, data: LearningData):
        enrol = data.enrolments.drop_duplicates(["course_id", "learner_id"]).reset_index(drop=True)
        self.enrol = enrol
        self.n = len(enrol)
        courses = data.courses.drop_duplicates("course_id").set_index("course_id")
        length = pd.to_numeric(courses["length_days"], errors="coerce")
        self.course_length = (
            enrol["course_id"].map(length).astype(float).to_numpy()
        )  # NaN when unknown
        module = courses["module"] if "module" in courses.columns else pd.Series(dtype=object)
        self.module = enrol["course_id"].map(module).astype(object).to_numpy()
        self.course_codes, self.course_index = np.unique(
            enrol["course_id"].astype(str).to_numpy(), return_inverse=True
        )
        # (course, learner) -> enrolment row through one integer key (see _rows).
        self._courses = pd.Index(self.course_codes)
        self._learners = pd.Index(pd.unique(enrol["learner_id"]))
        self._key = pd.Index(self._codes(enrol["course_id"], enrol["learner_id"]))

        act = data.activity
        erow = self._rows(act["course_id"], act["learner_id"])
        ok = erow >= 0
        self.a_row = erow[ok]
        self.a_day = pd.to_numeric(act["day"]).to_numpy(np.int64)[ok]
        self.a_clicks = pd.to_numeric(act["clicks"]).to_numpy(np.float64)[ok]
        # Activity types mapped once per distinct value (a missing type is "other";
        # unknown types get the extra index len(KNOWN_TYPES)).
        type_index = {t: i for i, t in enumerate(KNOWN_TYPES)}
        codes, names = pd.factorize(act["activity_type"])
        of_name = np.array(
            [type_index.get(str(n), len(KNOWN_TYPES)) for n in names]
            + [type_index.get("other", len(KNOWN_TYPES))],  # code -1: missing
            dtype=np.int64,
        )
        self.a_type = of_name[codes][ok]
        group_of_type = np.array(
            [GROUPS.index(ACTIVITY_GROUPS.get(t, "other")) for t in KNOWN_TYPES]
            + [GROUPS.index("other")]
        )
        self.a_group = group_of_type[self.a_type]
        # daily totals (one row per enrolment row x day), sorted by row then day
        daily = (
            pd.DataFrame({"row": self.a_row, "day": self.a_day, "clicks": self.a_clicks})
            .groupby(["row", "day"], sort=True, as_index=False)["clicks"]
            .sum()
        )
        self.d_row = daily["row"].to_numpy(np.int64)
        self.d_day = daily["day"].to_numpy(np.int64)

        ass = data.assessments.copy()
        ass["due_day"] = pd.to_numeric(ass["due_day"], errors="coerce")
        ass["weight"] = pd.to_numeric(ass["weight"], errors="coerce").fillna(0.0)
        ass["course_id"] = ass["course_id"].astype(str)
        if "kind" not in ass.columns:
            ass["kind"] = None
        self.assessments = ass
        sub = data.submissions.merge(
            ass[["assessment_id", "course_id", "due_day", "weight", "kind"]],
            on="assessment_id",
            how="inner",
        )
        srow = self._rows(sub["course_id"], sub["learner_id"])
        ok = srow >= 0
        self.s_row = srow[ok]
        self.s_sub = pd.to_numeric(sub["submitted_day"], errors="coerce").to_numpy(float)[ok]
        self.s_due = sub["due_day"].to_numpy(float)[ok]
        self.s_weight = sub["weight"].to_numpy(float)[ok]
        self.s_score = pd.to_numeric(sub["score"], errors="coerce").to_numpy(float)[ok]
        self.s_ass = sub["assessment_id"].to_numpy()[ok]
        kind = sub["kind"].astype(object).where(sub["kind"].notna(), "")
        self.s_tma = kind.astype(str).str.upper().eq("TMA").to_numpy()[ok]
        banked = sub["is_banked"] if "is_banked" in sub.columns else pd.Series(0, index=sub.index)
        self.s_banked = pd.to_numeric(banked, errors="coerce").fillna(0).to_numpy(float)[ok]

    def _codes(self, course_ids: pd.Series, learner_ids: pd.Series) -> np.ndarray:
        """(course, learner) pairs as one int64 each; -1 where either is unknown.

        Course ids compare as strings (frames may hold them as ints or strings),
        cast once per distinct value rather than once per row.
        """
        codes, uniques = pd.factorize(course_ids)
        course_of_unique = np.append(self._courses.get_indexer(pd.Index(uniques).astype(str)), -1)
        course = course_of_unique[codes]  # code -1 (missing id) reads the appended -1
        learner = self._learners.get_indexer(learner_ids)
        key = course.astype(np.int64) * len(self._learners) + learner
        return np.where((course >= 0) & (learner >= 0), key, -1)

    def _rows(self, course_ids: pd.Series, learner_ids: pd.Series) -> np.ndarray:
        return self._key.get_indexer(self._codes(course_ids, learner_ids)).astype(np.int64)


def _bincount(rows: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    return np.bincount(rows, weights=weights, minlength=n).astype(float)


def build_features(
    data: LearningData,
    cutoff: int,
    label_mode: str = "oulad",
    inactivity_days: int = 28,
    n_weeks: int = DEFAULT_WEEKS,
    horizon_day: int | None = None,
    _prepared: _Prepared | None = None,
) -> ChurnFeatures:
    """Features and labels of the learners enrolled at `cutoff` in every course run."""
    if label_mode not in ("oulad", "inactivity"):
        raise ValueError(f"label_mode must be 'oulad' or 'inactivity', got {label_mode!r}")
    p = _prepared or _Prepared(data)
    c = int(cutoff)
    n = p.n
    e = p.enrol
    reg = pd.to_numeric(e["registered_day"], errors="coerce").to_numpy(float)
    unreg = pd.to_numeric(e["unregistered_day"], errors="coerce").to_numpy(float)
    running = ~(p.course_length <= c)  # unknown length counts as running
    # Enrolled at the start of day c: depends only on data dated before c.
    ranked_pop = running & ~(reg >= c) & ~(unreg < c)
    scored = ranked_pop & ~(unreg <= c)

    # ---- activity strictly before the cut-off ---------------------------------
    m = (p.a_day < c) & (p.a_day >= -PRE_START_DAYS)
    row, day, clicks = p.a_row[m], p.a_day[m], p.a_clicks[m]
    f: dict[str, np.ndarray] = {}
    total = _bincount(row, clicks, n)
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
        f[f"clicks_last_{k}d"] = _bincount(row[w], clicks[w], n)
    w = day < 0
    f["clicks_before_start"] = _bincount(row[w], clicks[w], n)

    dm = (p.d_day < c) & (p.d_day >= -PRE_START_DAYS)
    d_row, d_day = p.d_row[dm], p.d_day[dm]
    active = _bincount(d_row, None, n)
    f["active_days"] = active
    f["active_days_last_14d"] = _bincount(d_row[d_day >= c - 14], None, n)
    f["active_days_last_28d"] = _bincount(d_row[d_day >= c - 28], None, n)
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
    n_gaps = _bincount(g_rows, None, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        f["mean_gap_days"] = np.where(n_gaps > 0, _bincount(g_rows, g_vals, n) / n_gaps, np.nan)

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
    f["clicks_last_3d"] = _bincount(row[w], clicks[w], n)
    w = (day >= 0) & (day < 14)
    f["clicks_first_14d"] = _bincount(row[w], clicks[w], n)
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

    # ---- assessments due before the cut-off, submissions before it --------------
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
    submitted = _bincount(sr, None, n)
    f["assessments_due"] = due_count[ci]
    f["assessments_submitted"] = submitted
    f["assessments_missed"] = np.maximum(due_count[ci] - submitted, 0)
    f["assessments_late"] = _bincount(sr, (sdf["sub"] > sdf["due"]).to_numpy(float), n)
    with np.errstate(invalid="ignore", divide="ignore"):
        f["submitted_fraction"] = np.where(due_count[ci] > 0, submitted / due_count[ci], np.nan)
        f["missed_weight"] = np.maximum(due_weight[ci] - _bincount(sr, sdf["w"].to_numpy(), n), 0)
        has_score = sdf["score"].notna().to_numpy()
        sc = sdf["score"].fillna(0).to_numpy()
        n_sc = _bincount(sr[has_score], None, n)
        f["mean_score"] = np.where(n_sc > 0, _bincount(sr, sc * has_score, n) / n_sc, np.nan)
        w = sdf["w"].to_numpy() * has_score
        wsum = _bincount(sr, w, n)
        f["weighted_score"] = np.where(wsum > 0, _bincount(sr, sc * w, n) / wsum, f["mean_score"])
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
            _bincount(sr, (sdf["due"] - sdf["sub"]).to_numpy(), n) / submitted,
            np.nan,
        )
    last_sub = np.full(n, np.nan)
    if len(sdf):
        gl = sdf.groupby("row")["sub"].max()
        last_sub[gl.index.to_numpy(np.int64)] = gl.to_numpy()
    f["days_since_last_submission"] = c - last_sub
    # tutor-marked (TMA) vs computer-marked and banked (carried over from an earlier attempt)
    is_tma = sdf["tma"].to_numpy(bool)
    f["tma_submitted"] = _bincount(sr[is_tma], None, n)
    f["cma_submitted"] = _bincount(sr[~is_tma], None, n)
    tma_scored = has_score & is_tma
    n_tma = _bincount(sr[tma_scored], None, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        f["tma_mean_score"] = np.where(
            n_tma > 0, _bincount(sr[tma_scored], sc[tma_scored], n) / n_tma, np.nan
        )
    f["banked_submissions"] = _bincount(sr, sdf["banked"].to_numpy(float), n)
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

    # ---- keep the population, ranks within the course run ----------------------
    frame = pd.DataFrame(f)
    pop = np.flatnonzero(ranked_pop)
    ranked = frame.iloc[pop][RANKED].copy()
    ranked["_course"] = ci[pop]
    ranks = ranked.groupby("_course")[RANKED].rank(pct=True, method="average")
    for r in RANKED:
        col = np.full(n, np.nan)
        col[pop] = ranks[r].to_numpy()
        frame[f"rank_{r}"] = col
    med = pd.Series(np.log1p(frame["total_clicks"].to_numpy()[pop])).groupby(ci[pop]).median()
    run_median = np.full(n_courses, np.nan)
    run_median[med.index.to_numpy(np.int64)] = med.to_numpy()
    frame["run_median_clicks"] = run_median[ci]
    run_size = np.bincount(ci[pop], minlength=n_courses).astype(float)
    frame["run_size"] = run_size[ci]
    frame["run_recent_withdrawal"] = _recent_withdrawal(ci, n_courses, reg, unreg, running, c)[ci]

    for name in DEMOGRAPHIC_CATEGORICALS:
        values = e[name].astype(object) if name in e.columns else pd.Series([None] * n)
        frame[name] = values.where(values.notna(), None).to_numpy(object)

    kinds = feature_kinds(n_weeks)
    flat_columns = list(kinds)
    seq_cols = seq_column_names(n_weeks)
    seq_frame = pd.DataFrame(seq.reshape(n, -1), columns=seq_cols)
    keys = pd.DataFrame(
        {"course_id": e["course_id"].to_numpy(), "learner_id": e["learner_id"].to_numpy()}
    )
    keys["cutoff"] = c
    keys["module"] = p.module  # not a feature: the model's base-rate lookup (RunPrior)
    out = pd.concat([keys, frame[flat_columns], seq_frame], axis=1)

    labels = _labels(p, data, c, label_mode, inactivity_days, horizon_day, reg, unreg)
    keep = np.flatnonzero(scored)
    return ChurnFeatures(
        frame=out.iloc[keep].reset_index(drop=True),
        labels=labels[keep],
        flat_columns=flat_columns,
        seq_columns=seq_cols,
        kinds=kinds,
        n_weeks=n_weeks,
    )


def _recent_withdrawal(
    ci: np.ndarray, n_courses: int, reg: np.ndarray, unreg: np.ndarray, running: np.ndarray, c: int
) -> np.ndarray:
    """Per course run: share of the learners registered before ``c`` and still enrolled at
    ``c - RECENT_WITHDRAWAL_DAYS`` who unregistered in ``[c - RECENT_WITHDRAWAL_DAYS, c)``,
    smoothed as (k + 0.5) / (n + 1) (small runs). Only dates before ``c`` are read."""
    start = c - RECENT_WITHDRAWAL_DAYS
    at_risk = running & ~(reg >= c) & ~(unreg < start)
    left = at_risk & (unreg < c)
    n_at = np.bincount(ci[at_risk], minlength=n_courses).astype(float)
    k = np.bincount(ci[left], minlength=n_courses).astype(float)
    return (k + 0.5) / (n_at + 1.0)


def _labels(p, data, c, label_mode, inactivity_days, horizon_day, reg, unreg) -> np.ndarray:
    e = p.enrol
    if label_mode == "oulad":
        withdrawn = e["final_result"].astype(str).str.strip().str.lower().eq("withdrawn").to_numpy()
        return (withdrawn & ~(unreg <= c)).astype(float)
    n_days = int(inactivity_days)
    in_window = (p.d_day >= c) & (p.d_day < c + n_days)
    active_after = _bincount(p.d_row[in_window], None, p.n) > 0
    left = (unreg > c) & (unreg <= c + n_days)
    label = (left | ~active_after).astype(float)
    if horizon_day is None:
        last_day = pd.Series(p.d_day).groupby(p.course_index[p.d_row]).max()
        horizon = np.full(len(p.course_codes), -np.inf)
        horizon[last_day.index.to_numpy(np.int64)] = last_day.to_numpy()
        horizon = horizon[p.course_index]
    else:
        horizon = np.full(p.n, float(horizon_day))
    label[(c + n_days - 1 > horizon) & ~left] = np.nan
    return label


def build_dataset(
    data: LearningData,
    cutoffs: list[int],
    label_mode: str = "oulad",
    inactivity_days: int = 28,
    n_weeks: int = DEFAULT_WEEKS,
    horizon_day: int | None = None,
) -> ChurnFeatures:
    """Features at several cut-offs stacked (the frame keeps the cutoff column)."""
    prepared = _Prepared(data)
    parts = [
        build_features(
            data,
            c,
            label_mode=label_mode,
            inactivity_days=inactivity_days,
            n_weeks=n_weeks,
            horizon_day=horizon_day,
            _prepared=prepared,
        )
        for c in cutoffs
    ]
    return ChurnFeatures.concat(parts)
