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

from churn.model.activity import activity_features
from churn.model.assessments import assessment_features
from churn.model.prepared import (
    CATEGORICAL,
    COUNT,
    DEFAULT_WEEKS,
    DEMOGRAPHIC_CATEGORICALS,
    GROUPS,
    KNOWN_TYPES,
    RATE,
    SEQ_CHANNELS,
    Prepared,
    bincount,
)

# Re-exported: the feature schema is read from here by the model, evaluation and bench.
__all__ = [
    "CATEGORICAL",
    "COUNT",
    "DEFAULT_WEEKS",
    "RANKED",
    "RATE",
    "RUN_LEVEL",
    "SEQ_CHANNELS",
    "ChurnFeatures",
    "build_dataset",
    "build_features",
    "feature_kinds",
    "seq_column_names",
    "sequence_array",
]
from eduplatform.ml.data import LearningData


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
        return np.asarray(sequence_array(self.frame, self.n_weeks, self.channels))

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


def sequence_array(
    frame: pd.DataFrame, n_weeks: int, channels: list[str] | None = None
) -> np.ndarray:
    """(n, weeks, channels) float32, oldest week first (ready for a GRU/conv)."""
    channels = channels or SEQ_CHANNELS
    cols = seq_column_names(n_weeks, channels)
    values = frame.reindex(columns=cols).to_numpy(np.float32, na_value=0.0)
    return np.asarray(values.reshape(len(frame), n_weeks, len(channels))[:, ::-1, :].copy())


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


def build_features(
    data: LearningData,
    cutoff: int,
    label_mode: str = "oulad",
    inactivity_days: int = 28,
    n_weeks: int = DEFAULT_WEEKS,
    horizon_day: int | None = None,
    _prepared: Prepared | None = None,
) -> ChurnFeatures:
    """Features and labels of the learners enrolled at `cutoff` in every course run."""
    if label_mode not in ("oulad", "inactivity"):
        raise ValueError(f"label_mode must be 'oulad' or 'inactivity', got {label_mode!r}")
    p = _prepared or Prepared(data)
    c = int(cutoff)
    n = p.n
    e = p.enrol
    reg = pd.to_numeric(e["registered_day"], errors="coerce").to_numpy(float)
    unreg = pd.to_numeric(e["unregistered_day"], errors="coerce").to_numpy(float)
    running = ~(p.course_length <= c)  # unknown length counts as running
    # Enrolled at the start of day c: depends only on data dated before c.
    ranked_pop = running & ~(reg >= c) & ~(unreg < c)
    scored = ranked_pop & ~(unreg <= c)

    f, seq = activity_features(p, c, reg, n_weeks)
    f.update(assessment_features(p, c, n_weeks, seq))
    n_courses = len(p.course_codes)
    ci = p.course_index

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


def _labels(  # type: ignore[no-untyped-def]  # the prepared arrays of build_features
    p, data, c, label_mode, inactivity_days, horizon_day, reg, unreg
) -> np.ndarray:
    e = p.enrol
    if label_mode == "oulad":
        withdrawn = e["final_result"].astype(str).str.strip().str.lower().eq("withdrawn").to_numpy()
        return np.asarray((withdrawn & ~(unreg <= c)).astype(float))
    n_days = int(inactivity_days)
    in_window = (p.d_day >= c) & (p.d_day < c + n_days)
    active_after = bincount(p.d_row[in_window], None, p.n) > 0
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
    return np.asarray(label)


def build_dataset(
    data: LearningData,
    cutoffs: list[int],
    label_mode: str = "oulad",
    inactivity_days: int = 28,
    n_weeks: int = DEFAULT_WEEKS,
    horizon_day: int | None = None,
) -> ChurnFeatures:
    """Features at several cut-offs stacked (the frame keeps the cutoff column)."""
    prepared = Prepared(data)
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
