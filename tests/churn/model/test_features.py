import numpy as np
import pandas as pd
import pytest

from churn.model.features import (
    SEQ_CHANNELS,
    build_dataset,
    build_features,
)
from eduplatform.ml.data import LearningData


def _frames(enrol_rows, activity_rows, assessments_rows=(), submission_rows=(), course="C1"):
    enrolments = pd.DataFrame(
        [
            {
                "course_id": course,
                "learner_id": lid,
                "registered_day": reg,
                "unregistered_day": unreg,
                "final_result": result,
                "gender": "F",
                "region": None,
                "highest_education": None,
                "imd_band": None,
                "age_band": "0-35",
                "disability": "N",
                "num_of_prev_attempts": 0.0,
                "studied_credits": 60.0,
            }
            for lid, reg, unreg, result in enrol_rows
        ]
    )
    activity = pd.DataFrame(
        activity_rows, columns=["learner_id", "day", "activity_type", "clicks"]
    ).assign(course_id=course)
    item_activity = activity.assign(item_id=activity["activity_type"].map(hash) % 97)[
        ["course_id", "learner_id", "item_id", "day", "clicks"]
    ]
    assessments = pd.DataFrame(
        assessments_rows, columns=["assessment_id", "kind", "due_day", "weight"]
    ).assign(course_id=course)
    submissions = pd.DataFrame(
        submission_rows, columns=["assessment_id", "learner_id", "submitted_day", "score"]
    ).assign(is_banked=False)
    return LearningData(
        courses=pd.DataFrame(
            [{"course_id": course, "module": "M", "presentation": "P", "length_days": 200}]
        ),
        enrolments=enrolments,
        activity=activity,
        item_activity=item_activity,
        items=pd.DataFrame(
            columns=["course_id", "item_id", "activity_type", "week_from", "week_to"]
        ),
        assessments=assessments,
        submissions=submissions,
    )


@pytest.fixture
def tiny():
    return _frames(
        enrol_rows=[
            (1, -10.0, np.nan, "Pass"),
            (2, -10.0, 40.0, "Withdrawn"),  # withdraws after the cut-off: positive
            (3, -10.0, 20.0, "Withdrawn"),  # on the cut-off: not scored
            (4, 25.0, np.nan, "Pass"),  # registers after the cut-off: not scored
            (5, -5.0, np.nan, "Withdrawn"),  # withdrawn, date unknown: positive
        ],
        activity_rows=[
            (1, 1, "oucontent", 2),
            (1, 5, "forumng", 3),
            (1, 9, "quiz", 4),
            (1, 9, "homepage", 1),
            (1, 25, "quiz", 100),  # after the cut-off
            (2, -3, "homepage", 7),
            (2, 12, "newfangled", 5),  # an activity type the model has never seen
        ],
        assessments_rows=[(10, "TMA", 5.0, 10.0), (11, "TMA", 8.0, 20.0), (12, "TMA", 30.0, 20.0)],
        submission_rows=[(10, 1, 6.0, 80.0), (11, 2, 7.0, 50.0), (12, 1, 15.0, 90.0)],
    )


def test_hand_computed_features(tiny):
    f = build_features(tiny, 20)
    frame = f.frame.set_index("learner_id")
    assert sorted(frame.index) == [1, 2, 5]
    a = frame.loc[1]
    assert a["total_clicks"] == 10
    assert a["active_days"] == 3
    assert a["days_since_last_activity"] == 11
    assert a["longest_gap_days"] == 11  # the trailing gap 9 -> 20
    assert a["mean_gap_days"] == 4
    assert a["clicks_type_quiz"] == 4
    assert a["assessments_due"] == 2  # the one due on day 30 is not due yet
    assert a["assessments_submitted"] == 1
    assert a["assessments_missed"] == 1
    assert a["assessments_late"] == 1
    assert a["mean_score"] == 80  # the early submission to a later assessment is ignored
    b = frame.loc[2]
    assert b["clicks_before_start"] == 7
    assert b["clicks_type_other"] == 5
    assert frame.loc[5, "never_active"] == 1
    assert np.isnan(frame.loc[5, "mean_score"])
    # weekly sequence: week 0 = days 13..19, week 1 = days 6..12
    seq = f.sequence()
    assert seq.shape == (3, f.n_weeks, len(SEQ_CHANNELS))
    row = list(frame.index).index(1)
    # oldest week first: the last row of the sequence is week 0
    ch = SEQ_CHANNELS.index("quiz")
    assert seq[row, -2, ch] == 4  # day 9 is in week 1
    assert seq[row, -1, :5].sum() == 0


def test_run_recent_withdrawal(tiny):
    # cut-off 20, window [-10, 20): learners 1, 2, 3, 5 at risk (4 registers on day 25);
    # 3 unregisters on day 20, not before the cut-off: nobody left -> (0 + 0.5) / (4 + 1)
    f = build_features(tiny, 20)
    assert np.allclose(f.frame["run_recent_withdrawal"], 0.5 / 5)
    # cut-off 45, window [15, 45): all 5 at risk, 2 (day 40) and 3 (day 20) left
    f = build_features(tiny, 45)
    assert np.allclose(f.frame["run_recent_withdrawal"], 2.5 / 6)


def test_run_recent_withdrawal_reads_no_unregistration_on_or_after_the_cutoff(tiny):
    before = build_features(tiny, 20).frame["run_recent_withdrawal"]
    enr = tiny.enrolments.copy()
    enr.loc[enr["learner_id"] == 1, "unregistered_day"] = 20.0  # on the cut-off
    enr.loc[enr["learner_id"] == 5, "unregistered_day"] = 21.0
    on_or_after = LearningData(**{**tiny.__dict__, "enrolments": enr})
    after = build_features(on_or_after, 20).frame
    assert np.allclose(after["run_recent_withdrawal"], before.iloc[0])
    enr.loc[enr["learner_id"] == 5, "unregistered_day"] = 19.0  # the day before: counted
    earlier = build_features(LearningData(**{**tiny.__dict__, "enrolments": enr}), 20).frame
    assert np.allclose(earlier["run_recent_withdrawal"], 1.5 / 5)


def test_oulad_labels(tiny):
    f = build_features(tiny, 20)
    labels = dict(zip(f.frame["learner_id"], f.labels, strict=True))
    assert labels == {1: 0.0, 2: 1.0, 5: 1.0}


def test_inactivity_labels(tiny):
    f = build_features(tiny, 20, label_mode="inactivity", inactivity_days=10, horizon_day=60)
    labels = dict(zip(f.frame["learner_id"], f.labels, strict=True))
    # 1 is active on day 25 (in [20, 30)); 2 unenrols on day 40 (outside the window) and is
    # inactive in it; 5 never active
    assert labels == {1: 0.0, 2: 1.0, 5: 1.0}
    unknown = build_features(tiny, 20, label_mode="inactivity", inactivity_days=10, horizon_day=25)
    assert np.isnan(unknown.labels).all()
    with pytest.raises(ValueError):
        build_features(tiny, 20, label_mode="vibes")


def _mutate_after(data: LearningData, cutoff: int, rng) -> LearningData:
    """Change and add every kind of row dated on or after the cut-off."""
    act = data.activity.copy()
    late = act["day"] >= cutoff
    act.loc[late, "clicks"] = act.loc[late, "clicks"] * 7 + 1
    some = act.sample(200, random_state=1).assign(
        day=lambda d: cutoff + rng.integers(0, 50, len(d)), activity_type="brandnew"
    )
    act = pd.concat([act, some], ignore_index=True)
    ia = data.item_activity.copy()
    ia.loc[ia["day"] >= cutoff, "clicks"] += 3
    extra_ia = ia.sample(200, random_state=2).assign(
        day=lambda d: cutoff + rng.integers(0, 50, len(d)), item_id=999999
    )
    ia = pd.concat([ia, extra_ia], ignore_index=True)
    ass = data.assessments.copy()
    later = ass["due_day"] >= cutoff
    ass.loc[later, "weight"] = 99.0
    ass.loc[later, "due_day"] = ass.loc[later, "due_day"] + 3
    sub = data.submissions.copy()
    sub.loc[sub["submitted_day"] >= cutoff, "score"] = 1.0
    extra_sub = sub.sample(100, random_state=3).assign(submitted_day=float(cutoff), score=0.0)
    sub = pd.concat([sub, extra_sub], ignore_index=True)
    enr = data.enrolments.copy()
    after = enr["unregistered_day"] > cutoff
    enr.loc[after, "unregistered_day"] = cutoff + 1.0
    enr["final_result"] = np.where(enr["final_result"] == "Pass", "Fail", "Withdrawn")
    newcomers = enr.sample(20, random_state=4).assign(
        learner_id=lambda d: d["learner_id"] + 10_000_000, registered_day=float(cutoff)
    )
    enr = pd.concat([enr, newcomers], ignore_index=True)
    return LearningData(
        courses=data.courses,
        enrolments=enr,
        activity=act,
        item_activity=ia,
        items=data.items,
        assessments=ass,
        submissions=sub,
    )


@pytest.mark.parametrize("cutoff", [30, 60, 150])
def test_no_leakage_from_data_on_or_after_the_cutoff(synth_data, cutoff):
    before = build_features(synth_data, cutoff)
    after = build_features(_mutate_after(synth_data, cutoff, np.random.default_rng(0)), cutoff)
    columns = ["course_id", "learner_id", *before.flat_columns, *before.seq_columns]
    pd.testing.assert_frame_equal(before.frame[columns], after.frame[columns])
    # the mutation did reach the labels, so it was not a no-op
    assert not np.array_equal(before.labels, after.labels)


def test_mutating_data_before_the_cutoff_does_change_features(synth_data):
    """The control for the leakage test: the comparison can fail."""
    before = build_features(synth_data, 60)
    data = synth_data
    act = data.activity.copy()
    act.loc[act["day"] == 59, "clicks"] += 1
    changed = LearningData(**{**data.__dict__, "activity": act})
    after = build_features(changed, 60)
    assert not before.frame["clicks_last_7d"].equals(after.frame["clicks_last_7d"])


def test_ranks_are_within_course_run(synth_data):
    f = build_features(synth_data, 60)
    for _, group in f.frame.groupby("course_id"):
        assert group["rank_total_clicks"].max() == 1.0
        assert group["rank_total_clicks"].min() > 0


def test_database_shaped_data_integer_ids_and_missing_demographics(synth_data):
    data = synth_data
    codes = {cid: i + 1 for i, cid in enumerate(sorted(data.courses["course_id"]))}
    remap = {}
    for name in ("courses", "enrolments", "activity", "item_activity", "items", "assessments"):
        frame = getattr(data, name).copy()
        frame["course_id"] = frame["course_id"].map(codes).astype(np.int64)
        remap[name] = frame
    enr = remap["enrolments"]
    for col in ("gender", "region", "highest_education", "imd_band", "age_band", "disability"):
        enr[col] = None
    enr["final_result"] = ""
    db = LearningData(**{**remap, "submissions": data.submissions})
    f = build_dataset(db, [30, 60], label_mode="inactivity")
    assert len(f) > 0
    assert set(f.frame["gender"].dropna()) == set()
    assert f.frame["course_id"].dtype.kind == "i"
    assert np.isfinite(f.frame["total_clicks"]).all()
    assert set(np.unique(f.labels[~np.isnan(f.labels)])) <= {0.0, 1.0}


def test_runs_that_are_over_are_skipped(synth_data):
    f = build_features(synth_data, 500)
    assert len(f) == 0


@pytest.mark.oulad
def test_real_oulad_slice(shared_oulad):
    from eduplatform.ml.datasets.oulad import load_oulad

    data = load_oulad(shared_oulad, course_ids=["AAA_2013J"], max_students=150)
    f = build_features(data, 60)
    assert 100 < len(f) <= 150
    assert 0 < np.mean(f.labels) < 0.5
    counts = [c for c, k in f.kinds.items() if k == "count"]
    assert (f.frame[counts] >= 0).all().all()
    assert f.frame["rank_total_clicks"].between(0, 1).all()
