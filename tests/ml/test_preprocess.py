import json

import numpy as np
import pandas as pd
import pytest

from eduplatform.ml.preprocess import MISSING_LEVEL, Preprocessor

KINDS = {"score": "rate", "clicks": "count", "edu": "categorical"}  # not in sorted order


@pytest.fixture
def train():
    rng = np.random.default_rng(0)
    clicks = rng.poisson(5, 200).astype(float)
    clicks[:3] = [1e6, np.nan, np.nan]  # one outlier, two missing
    score = rng.normal(70, 10, 200)
    score[10:15] = np.nan
    edu = rng.choice(["A", "B", "C"], 200).astype(object)
    edu[:4] = None
    return pd.DataFrame({"clicks": clicks, "score": score, "edu": edu})


def test_missing_strategy_per_kind(train):
    pre = Preprocessor.fit(train, KINDS, log_counts=False)
    out = pre.transform(pd.DataFrame({"clicks": [np.nan], "score": [np.nan], "edu": [None]}))
    # count -> 0 (then standardized), rate -> train median + indicator, categorical -> "missing"
    zero = (0 - pre.means["clicks"]) / pre.stds["clicks"]
    assert out["clicks"].iloc[0] == pytest.approx(zero, rel=1e-5)
    median = (pre.medians["score"] - pre.means["score"]) / pre.stds["score"]
    assert out["score"].iloc[0] == pytest.approx(median, rel=1e-5, abs=1e-6)
    assert pre.medians["score"] == pytest.approx(train["score"].median())
    assert out["score__missing"].iloc[0] == 1.0
    assert out[f"edu=={MISSING_LEVEL}"].iloc[0] == 1.0
    assert out[["edu==A", "edu==B", "edu==C"]].to_numpy().sum() == 0


def test_unseen_level_goes_to_missing_and_is_reported(train):
    pre = Preprocessor.fit(train, KINDS)
    new = pd.DataFrame({"clicks": [1.0], "score": [50.0], "edu": ["Z"]})
    assert pre.transform(new)[f"edu=={MISSING_LEVEL}"].iloc[0] == 1.0
    assert pre.inspect(new).unseen_levels["edu"] == 1


def test_report_counts_missing_and_clipped(train):
    pre = Preprocessor.fit(train, KINDS, clip="quantile", quantiles=(0.01, 0.99))
    assert pre.report.missing == {"clicks": 2, "score": 5, "edu": 4}
    assert pre.report.clipped_high["clicks"] >= 1  # the 1e6 outlier
    assert pre.report.clipped_low["clicks"] == 0  # counts are clipped on the high side only
    assert pre.report.clipped_low["score"] >= 1
    out = pre.transform(train)
    assert out["clicks"].max() < 10  # the outlier no longer dominates


def test_iqr_clipping(train):
    pre = Preprocessor.fit(train, KINDS, clip="iqr", iqr_k=1.5, log_counts=False)
    q1, q3 = np.nanpercentile(train["clicks"].fillna(0), [25, 75])
    assert pre.high["clicks"] == pytest.approx(q3 + 1.5 * (q3 - q1))
    assert pre.report.clipped_high["clicks"] >= 1


def test_standardization_uses_train_statistics_only(train):
    pre = Preprocessor.fit(train, KINDS)
    out = pre.transform(train)
    assert abs(out["score"].mean()) < 1e-5
    assert out["score"].std(ddof=0) == pytest.approx(1.0, rel=1e-4)
    shifted = train.assign(score=train["score"] + 5)  # half a train std, inside the clip bounds
    assert pre.transform(shifted)["score"].mean() > 0.3  # not re-fitted on new data


def test_config_round_trips_through_json(train):
    pre = Preprocessor.fit(train, KINDS)
    # sort_keys as eduplatform.ml.artifacts does: the column order must survive it
    again = Preprocessor.from_config(json.loads(json.dumps(pre.to_config(), sort_keys=True)))
    np.testing.assert_array_equal(again.transform_array(train), pre.transform_array(train))
    assert again.report == pre.report
    assert again.output_columns == pre.output_columns


def test_bad_kind_rejected(train):
    with pytest.raises(ValueError, match="unknown kind"):
        Preprocessor.fit(train, {"clicks": "money"})
