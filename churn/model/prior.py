"""The run base rate: a course module's churn rate at a cut-off, learnt on past runs.

Used as a fixed logit offset of the network (`RunPrior`); its empirical-Bayes shrinkage
keeps modules with few runs near the pooled level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churn.model.features import ChurnFeatures

PRIOR_FEATURE = "course_base_rate"


@dataclass
class RunPrior:
    """Churn rate of a course run at a cut-off, learnt from the training runs.

    The network only ranks learners within their course run (it is trained with
    the logit of its own run's churn rate at that cut-off as a fixed offset); at
    prediction time the offset is this estimate of the run's rate.

    Two parts, both fitted per training cut-off on the logit scale (`fit`):

    * the run itself (when the frame has ``run_recent_withdrawal``, the share of
      its learners who unregistered in the 30 days before ``c``):
      ``intercept[c] + slope * logit(run_recent_withdrawal)``, a weighted least
      squares line over the training runs x cut-offs (one common slope). Runs that
      are losing learners now keep losing them; this is what a module never seen
      in training gets (OULAD leave-one-module-out, logit RMSE of the run rate
      0.32 against 0.59 for the overall rate, docs/churn-model.md);
    * the module (``frame["module"]``): what its training runs deviated from that
      line, shrunk towards 0 by empirical Bayes over course runs (factor
      tau2 / (tau2 + w2 / k), k runs of the module, w2 the spread between runs of
      one module, tau2 the spread between modules beyond it). Course runs of one
      module keep similar churn rates across presentations (OULAD: DDD 0.23-0.28,
      GGG 0.04-0.08 at day 30), which run-level network inputs could not carry to
      new runs.

    Without the run's withdrawal share (an older frame, or fewer than
    `MIN_RUNS_FOR_SLOPE` training runs) the module table alone is used: each
    module's rate shrunk towards the overall rate the same way, the overall rate
    for an unknown module. The nearest training cut-off is used for other days."""

    cutoffs: list[int]
    overall: list[float]
    modules: dict[str, list[float]]
    slope: float | None = None
    intercepts: list[float] | None = None
    effects: dict[str, list[float]] | None = None

    MIN_RUNS_FOR_SLOPE = 3

    @classmethod
    def fit(
        cls,
        modules: np.ndarray | None,
        cutoffs: np.ndarray,
        labels: np.ndarray,
        runs: np.ndarray | None = None,
        recent: np.ndarray | None = None,
    ) -> RunPrior:
        runs = np.arange(len(labels)) * 0 if runs is None else runs
        frame = pd.DataFrame(
            {
                "m": modules if modules is not None else None,
                "c": cutoffs,
                "y": labels,
                "r": runs,
                "x": np.nan if recent is None else np.asarray(recent, dtype=float),
            }
        ).dropna(subset=["y"])
        grid = sorted(int(c) for c in frame["c"].unique())
        overall = frame.groupby("c")["y"].mean()
        per_run = frame.dropna(subset=["m"]).groupby(["c", "m", "r"])["y"].agg(["mean", "count"])
        names = sorted({str(k[1]) for k in per_run.index})
        table: dict[str, list[float]] = {m: [] for m in names}
        for c in grid:
            base = float(_logit(np.array([overall[c]]))[0])
            shrunk = {m: float(overall[c]) for m in names}
            if c in per_run.index.get_level_values(0):
                rows = per_run.loc[c]
                z = pd.Series(_logit(rows["mean"].to_numpy(float)), index=rows.index)
                for m, dev in _shrunk_effects(z - base, rows).items():
                    shrunk[m] = float(1 / (1 + np.exp(-(base + dev))))
            for m in names:
                table[m].append(shrunk[m])
        prior = cls(grid, [float(overall[c]) for c in grid], table)
        prior._fit_slope(frame, grid, names)
        return prior

    def _fit_slope(self, frame: pd.DataFrame, grid: list[int], names: list[str]) -> None:
        """The run-level line and the modules' shrunk deviations from it (see the class)."""
        runs = (
            frame.dropna(subset=["x"])
            .groupby(["c", "r"])
            .agg(y=("y", "mean"), n=("y", "size"), x=("x", "mean"), m=("m", "first"))
        )
        c_of = runs.index.get_level_values(0).to_numpy()
        if runs.index.get_level_values(1).nunique() < self.MIN_RUNS_FOR_SLOPE or set(
            int(c) for c in c_of
        ) != set(grid):
            return
        design = np.column_stack(
            [(c_of == c).astype(float) for c in grid] + [_logit(runs["x"].to_numpy(float))]
        )
        z = _logit(runs["y"].to_numpy(float))
        w = np.sqrt(runs["n"].to_numpy(float))
        beta = np.linalg.lstsq(design * w[:, None], z * w, rcond=None)[0]
        residual = pd.Series(z - design @ beta, index=runs.index)
        # A module's deviation from the line is estimated per cut-off, but the variances
        # that decide how far to trust it are pooled over the cut-offs (6-7 modules per
        # cut-off give a noisy tau2; leave-one-run-out on OULAD: logit RMSE 0.227 pooled,
        # 0.233 per cut-off).
        parts = {}
        for c in grid:
            rows = runs.loc[c].dropna(subset=["m"])
            if rows.empty:
                continue
            index = pd.MultiIndex.from_arrays([rows["m"], rows.index])
            res = pd.Series(residual.loc[c].loc[rows.index].to_numpy(), index=index)
            stats = pd.DataFrame(
                {"mean": rows["y"].to_numpy(), "count": rows["n"].to_numpy()}, index=index
            )
            parts[c] = _variance_parts(res, stats)
        raw_tau2 = [v[3] for v in parts.values() if not math.isnan(v[3])]
        w2 = float(np.mean([v[2] for v in parts.values()])) if parts else 0.0
        tau2 = max(0.0, float(np.mean(raw_tau2))) if raw_tau2 else 0.0
        effects: dict[str, list[float]] = {m: [] for m in names}
        for c in grid:
            if c not in parts:
                for m in names:
                    effects[m].append(0.0)
                continue
            means, k = parts[c][0], parts[c][1]
            for m in names:
                factor = tau2 / (tau2 + w2 / float(k[m])) if tau2 > 0 and m in k else 0.0
                effects[m].append(factor * float(means[m]) if m in means else 0.0)
        self.slope = float(beta[-1])
        self.intercepts = [float(b) for b in beta[:-1]]
        self.effects = effects

    def rate(
        self,
        modules: np.ndarray | pd.Series | None,
        cutoffs: np.ndarray | pd.Series,
        recent: np.ndarray | pd.Series | None = None,
    ) -> np.ndarray:
        cutoffs = np.asarray(cutoffs, dtype=float)
        grid = np.asarray(self.cutoffs, dtype=float)
        index = np.abs(cutoffs[:, None] - grid[None, :]).argmin(axis=1)
        out = np.asarray(self.overall, dtype=float)[index]
        keys = pd.Series(modules).astype(object) if modules is not None else None
        if keys is not None:
            for m, rates in self.modules.items():
                hit = (keys == m).to_numpy()
                out[hit] = np.asarray(rates)[index[hit]]
        if self.slope is None or self.intercepts is None or recent is None:
            return np.asarray(out)
        x = np.asarray(recent, dtype=float)
        ok = np.isfinite(x)
        z = np.asarray(self.intercepts)[index] + self.slope * _logit(np.where(ok, x, 0.5))
        if keys is not None:
            for m, devs in (self.effects or {}).items():
                hit = (keys == m).to_numpy()
                z[hit] += np.asarray(devs)[index[hit]]
        return np.asarray(np.where(ok, 1 / (1 + np.exp(-z)), out))

    def rate_of(self, frame: pd.DataFrame) -> np.ndarray:
        """The estimated churn rate of each row's course run (`rate` on a feature frame)."""
        modules = frame["module"].astype(str).to_numpy() if "module" in frame else None
        cutoffs = frame["cutoff"] if "cutoff" in frame else frame["cutoff_day"]
        recent = (
            frame["run_recent_withdrawal"].to_numpy(float)
            if "run_recent_withdrawal" in frame
            else None
        )
        return self.rate(modules, cutoffs.to_numpy(float), recent)

    def logit(self, frame: pd.DataFrame) -> np.ndarray:
        return _logit(self.rate_of(frame))

    def to_config(self) -> dict[str, Any]:
        return {
            "cutoffs": self.cutoffs,
            "overall": self.overall,
            "modules": self.modules,
            "slope": self.slope,
            "intercepts": self.intercepts,
            "effects": self.effects,
        }

    @classmethod
    def from_config(cls, d: dict[str, Any] | None) -> RunPrior | None:
        if not d:
            return None
        return cls(
            [int(c) for c in d["cutoffs"]],
            list(d["overall"]),
            dict(d["modules"]),
            None if d.get("slope") is None else float(d["slope"]),
            None if d.get("intercepts") is None else [float(v) for v in d["intercepts"]],
            None if d.get("effects") is None else dict(d["effects"]),
        )


def _variance_parts(z: pd.Series, rows: pd.DataFrame) -> tuple[pd.Series, pd.Series, float, float]:
    """Per module, from `z` (one value per run, index (module, run)): the mean and the
    number of runs, then w2 (spread between runs of one module; the sampling noise from
    `rows` mean / count when no module has 2 runs) and the raw tau2 (spread of the
    module means beyond w2 / k; may be negative, NaN with fewer than 2 modules)."""
    r = np.clip(rows["mean"].to_numpy(float), 0.005, 0.995)
    sampling = 1.0 / (rows["count"].to_numpy(float) * r * (1 - r))
    by_module = z.groupby(level=0)
    k = by_module.size()
    means = by_module.mean()
    within = by_module.var(ddof=1).dropna()
    w2 = float(within.mean()) if len(within) else float(np.mean(sampling))
    tau2 = float(np.var(means, ddof=1)) - w2 / float(k.mean()) if len(means) >= 2 else math.nan
    return means, k, w2, tau2


def _shrunk_effects(z: pd.Series, rows: pd.DataFrame) -> dict[str, float]:
    """Empirical Bayes per module: each module's mean of `z` (centred on the pooled
    level) shrunk towards 0 by tau2 / (tau2 + w2 / k) (`_variance_parts`). Modules that
    differ no more than their runs do get 0."""
    means, k, w2, tau2 = _variance_parts(z, rows)
    out = {str(m): 0.0 for m in means.index}
    if len(means) >= 2 and tau2 > 0:
        for m in means.index:
            out[str(m)] = tau2 / (tau2 + w2 / float(k[m])) * float(means[m])
    return out


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), 0.005, 0.995)
    return np.asarray(np.log(p / (1 - p)))


def _modules(features: ChurnFeatures) -> np.ndarray | None:
    frame = features.frame
    return frame["module"].astype(str).to_numpy() if "module" in frame else None


def fit_prior(features: ChurnFeatures) -> RunPrior:
    frame = features.frame
    return RunPrior.fit(
        _modules(features),
        frame["cutoff"].to_numpy(),
        features.labels,
        frame["course_id"].astype(str).to_numpy(),
        frame["run_recent_withdrawal"].to_numpy(float)
        if "run_recent_withdrawal" in frame
        else None,
    )


def own_run_logit(features: ChurnFeatures) -> np.ndarray:
    """Logit of each row's own course run churn rate at its cut-off."""
    frame = features.frame
    rate = (
        pd.Series(features.labels)
        .groupby([frame["course_id"].astype(str).to_numpy(), frame["cutoff"].to_numpy()])
        .transform("mean")
    )
    return _logit(rate.to_numpy(float))
