"""Pandas preprocessing shared by the churn model and the recommender.

Strategy per feature kind (the caller declares each column's kind):

- "count" (clicks, active days, assessments missed, ...): a missing value means
  nothing was recorded, so it becomes 0. Counts are heavy-tailed: they are clipped
  at the high train quantile (or IQR fence) and, by default, log1p-transformed.
- "rate" (scores, fractions, days since, ...): a missing value is unknown, not 0.
  It becomes the train median and a 0/1 column ``<name>__missing`` is added (only
  for columns that had missing values in training), so a model can tell "median"
  from "unknown". Rates are clipped at both train quantiles (or IQR fences).
- "categorical" (gender, region, ...): missing becomes the level "missing"; the
  column is one-hot encoded over the train levels plus "missing"; a level not
  seen in training is encoded as "missing" and counted as unseen.

Numeric outputs are standardized with the mean and standard deviation of the
training data (after imputation, clipping and log), indicator and one-hot columns
are left as 0/1. Every statistic is fitted on the training frame only.

The fitted `Preprocessor` is a dataclass of plain lists/dicts (``to_config`` /
``from_config`` round-trip through JSON exactly) and carries a `QualityReport`
(missing and clipped counts per feature) for the data-quality dashboard.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

KINDS = ("count", "rate", "categorical")
MISSING_LEVEL = "missing"


@dataclass
class QualityReport:
    """What the preprocessor found in one frame (train at fit time, or new data)."""

    n_rows: int
    missing: dict[str, int] = field(default_factory=dict)
    clipped_low: dict[str, int] = field(default_factory=dict)
    clipped_high: dict[str, int] = field(default_factory=dict)
    unseen_levels: dict[str, int] = field(default_factory=dict)

    def clipped(self, column: str) -> int:
        return self.clipped_low.get(column, 0) + self.clipped_high.get(column, 0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QualityReport:
        return cls(**d)


@dataclass
class Preprocessor:
    kinds: dict[str, str]
    clip_method: str
    low: dict[str, float | str]  # "inf"/"-inf" when not clipped on that side
    high: dict[str, float | str]
    medians: dict[str, float]
    indicator_columns: list[str]
    categories: dict[str, list[str]]
    log_counts: bool
    means: dict[str, float]
    stds: dict[str, float]
    output_columns: list[str]
    report: QualityReport

    # ---- fitting ------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        kinds: dict[str, str],
        clip: str = "quantile",
        quantiles: tuple[float, float] = (0.001, 0.999),
        iqr_k: float = 3.0,
        log_counts: bool = True,
        max_levels: int = 50,
    ) -> Preprocessor:
        """Fit on a training frame. `clip` is "quantile", "iqr" or "none"."""
        if clip not in ("quantile", "iqr", "none"):
            raise ValueError(f"clip must be quantile, iqr or none, got {clip!r}")
        for name, kind in kinds.items():
            if kind not in KINDS:
                raise ValueError(f"{name}: unknown kind {kind!r}")
            if name not in frame.columns:
                raise ValueError(f"column {name!r} is not in the frame")
        low: dict[str, float | str] = {}
        high: dict[str, float | str] = {}
        medians: dict[str, float] = {}
        indicators: list[str] = []
        categories: dict[str, list[str]] = {}
        missing: dict[str, int] = {}
        for name, kind in kinds.items():
            col = frame[name]
            missing[name] = int(col.isna().sum())
            if kind == "categorical":
                levels = _as_text(col).value_counts()
                levels = levels.drop(MISSING_LEVEL, errors="ignore")
                categories[name] = [*sorted(levels.index[:max_levels].tolist()), MISSING_LEVEL]
                continue
            values = pd.to_numeric(col, errors="coerce").astype(float)
            if kind == "rate":
                med = float(values.median()) if values.notna().any() else 0.0
                medians[name] = med
                if missing[name] > 0:
                    indicators.append(name)
            finite = values.dropna() if kind == "rate" else values.fillna(0.0)
            if clip == "none" or finite.empty:
                lo, hi = -np.inf, np.inf
            elif clip == "quantile":
                lo, hi = (float(q) for q in finite.quantile(list(quantiles)))
            else:
                q1, q3 = (float(q) for q in finite.quantile([0.25, 0.75]))
                iqr = q3 - q1
                lo, hi = q1 - iqr_k * iqr, q3 + iqr_k * iqr
                if iqr == 0:  # a mostly-constant column: do not clip its rare values away
                    lo, hi = float(finite.min()), float(finite.max())
            if kind == "count":
                lo = -np.inf  # counts are only clipped on the high side
            low[name], high[name] = _json_float(lo), _json_float(hi)
        pre = cls(
            kinds=dict(kinds),
            clip_method=clip,
            low=low,
            high=high,
            medians=medians,
            indicator_columns=indicators,
            categories=categories,
            log_counts=log_counts,
            means={},
            stds={},
            output_columns=[],
            report=QualityReport(n_rows=len(frame)),
        )
        numeric = pre._numeric(frame)
        for name in numeric.columns:
            mean = float(numeric[name].mean()) if len(numeric) else 0.0
            std = float(numeric[name].std(ddof=0)) if len(numeric) else 1.0
            pre.means[name] = mean
            pre.stds[name] = std if std > 1e-12 else 1.0
        pre.output_columns = pre._output_columns()
        pre.report = pre.inspect(frame)
        return pre

    # ---- applying ------------------------------------------------------------
    def inspect(self, frame: pd.DataFrame) -> QualityReport:
        """Missing, clipped and unseen-level counts of `frame` against the fitted bounds."""
        report = QualityReport(n_rows=len(frame))
        for name, kind in self.kinds.items():
            col = frame[name] if name in frame.columns else pd.Series([np.nan] * len(frame))
            report.missing[name] = int(col.isna().sum())
            if kind == "categorical":
                text = _as_text(col)
                unseen = ~text.isin(self.categories[name])
                report.unseen_levels[name] = int(unseen.sum())
                continue
            values = pd.to_numeric(col, errors="coerce").astype(float)
            if kind == "count":
                values = values.fillna(0.0)
            report.clipped_low[name] = int((values < _from_json(self.low[name])).sum())
            report.clipped_high[name] = int((values > _from_json(self.high[name])).sum())
        return report

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The model inputs as a float32 frame with `output_columns`."""
        return pd.DataFrame(
            self.transform_array(frame), columns=self.output_columns, index=frame.index
        )

    def transform_array(self, frame: pd.DataFrame) -> np.ndarray:
        numeric = self._numeric(frame)
        means = np.array([self.means[c] for c in numeric.columns])
        stds = np.array([self.stds[c] for c in numeric.columns])
        parts = [(numeric.to_numpy(float) - means) / stds]
        for name in self.indicator_columns:
            col = frame[name] if name in frame.columns else pd.Series([np.nan] * len(frame))
            parts.append(col.isna().to_numpy(float)[:, None])
        for name, levels in self.categories.items():
            col = frame[name] if name in frame.columns else pd.Series([None] * len(frame))
            text = _as_text(col)
            text = text.where(text.isin(levels), MISSING_LEVEL)
            codes = pd.Categorical(text, categories=levels).codes
            onehot = np.zeros((len(frame), len(levels)))
            onehot[np.arange(len(frame)), codes] = 1.0
            parts.append(onehot)
        return np.hstack(parts).astype(np.float32) if parts else np.zeros((len(frame), 0))

    def _numeric(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = {}
        for name, kind in self.kinds.items():
            if kind == "categorical":
                continue
            col = frame[name] if name in frame.columns else pd.Series([np.nan] * len(frame))
            values = pd.to_numeric(col, errors="coerce").astype(float).to_numpy()
            if kind == "count":
                values = np.nan_to_num(values, nan=0.0)
            else:
                values = np.where(np.isnan(values), self.medians[name], values)
            values = np.clip(values, _from_json(self.low[name]), _from_json(self.high[name]))
            if kind == "count" and self.log_counts:
                values = np.sign(values) * np.log1p(np.abs(values))
            out[name] = values
        return pd.DataFrame(out, index=frame.index)

    def _output_columns(self) -> list[str]:
        cols = [n for n, k in self.kinds.items() if k != "categorical"]
        cols += [f"{n}__missing" for n in self.indicator_columns]
        for name, levels in self.categories.items():
            cols += [f"{name}=={level}" for level in levels]
        return cols

    def source_of(self, output_column: str) -> str:
        """The input feature an output column comes from (for grouping attributions)."""
        if "==" in output_column:
            return output_column.split("==", 1)[0]
        if output_column.endswith("__missing"):
            return output_column[: -len("__missing")]
        return output_column

    # ---- serialization ---------------------------------------------------------
    def to_config(self) -> dict[str, Any]:
        """JSON-ready dict (infinite clip bounds are stored as strings).

        Column order matters and JSON writers may sort object keys, so the ordered
        mappings (kinds, categories) are stored as lists of [name, value] pairs.
        """
        d = asdict(self)
        d["kinds"] = [[k, v] for k, v in self.kinds.items()]
        d["categories"] = [[k, v] for k, v in self.categories.items()]
        d["report"] = self.report.to_dict()
        return d

    @classmethod
    def from_config(cls, d: dict[str, Any]) -> Preprocessor:
        d = dict(d)
        if isinstance(d["kinds"], list):
            d["kinds"] = {k: v for k, v in d["kinds"]}
        if isinstance(d["categories"], list):
            d["categories"] = {k: list(v) for k, v in d["categories"]}
        d["report"] = QualityReport.from_dict(d["report"])
        return cls(**d)


def _as_text(col: pd.Series) -> pd.Series:
    text = col.astype(object).where(col.notna(), MISSING_LEVEL).astype(str).str.strip()
    return text.where(text != "", MISSING_LEVEL)


def _json_float(x: float) -> float | str:
    if np.isposinf(x):
        return "inf"
    if np.isneginf(x):
        return "-inf"
    return float(x)


def _from_json(x: float | str) -> float:
    return float(x)
