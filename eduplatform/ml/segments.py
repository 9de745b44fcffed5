"""Behaviour segments: k-means over standardized learner activity features.

Django-free: a feature matrix in, dataclasses out. The recipe, in order:

1. Missing values become the column median of the learners at hand (a column
   with no values at all becomes 0). Callers pass NaN for "unknown", e.g. the
   recency of a learner who was never active.
2. Heavy-tailed count columns (``log_features``) are log1p-transformed, so a few
   very active learners do not own a cluster each.
3. Every column is standardized (zero mean, unit variance; constant columns
   stay 0), so clicks do not outweigh shares in the distance.
4. k-means (k-means++ init, several restarts, fixed seed: same data, same
   segments). Without an explicit k, k is chosen by the silhouette score on a
   fixed random sample of at most ``silhouette_sample`` learners (the exact
   score is quadratic in learners).
5. Segments are renumbered by descending mean of ``order_by`` (default: the
   first feature), so segment 0 is always the most active, whatever the
   k-means labels were.
6. PCA to two components of the standardized matrix gives the scatter chart.

Profiles report the mean of each feature in the original units (before
imputation: the mean over learners with a value) and, when an outcome vector
is passed (e.g. withdrawn yes/no), its rate per segment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score

DEFAULT_K_RANGE = (2, 6)
# Below this many learners clustering says nothing; one segment is returned.
MIN_LEARNERS = 6


@dataclass(frozen=True)
class SegmentProfile:
    segment: int
    size: int
    share: float  # of all learners
    means: dict[str, float | None]  # original units; None when nobody had a value
    z_means: dict[str, float]  # standardized units: how the segment differs from everyone
    outcome_rate: float | None  # e.g. withdrawal rate; None without an outcome
    description: str


@dataclass(frozen=True)
class Segmentation:
    k: int
    feature_names: tuple[str, ...]
    labels: np.ndarray  # (n,) segment per learner, 0 = highest ``order_by``
    projection: np.ndarray  # (n, 2) PCA coordinates
    explained_variance: tuple[float, float]  # ratio per component
    profiles: tuple[SegmentProfile, ...]
    silhouette: float | None  # of the chosen k (None for a single segment)
    k_scores: dict[int, float] = field(default_factory=dict)  # silhouette per tried k
    note: str = ""  # why the result is degenerate, if it is


def standardize(
    features: np.ndarray, feature_names: Sequence[str], log_features: Sequence[str] = ()
) -> np.ndarray:
    """Steps 1-3 of the recipe: impute medians, log1p the counts, z-score every column."""
    x = np.array(features, dtype=float, copy=True)
    if x.ndim != 2 or x.shape[1] != len(feature_names):
        raise ValueError(
            f"features must be (n, {len(feature_names)}), got shape {np.shape(features)}"
        )
    for j in range(x.shape[1]):
        column = x[:, j]
        missing = np.isnan(column)
        if missing.all():
            column[:] = 0.0
        elif missing.any():
            column[missing] = np.median(column[~missing])
    for name in log_features:
        j = list(feature_names).index(name)
        # Counts are >= 0; clip guards against a stray negative before log1p.
        x[:, j] = np.log1p(np.clip(x[:, j], 0, None))
    if len(x) == 0:
        return x
    mean = x.mean(axis=0)
    std = x.std(axis=0)
    std[std == 0] = 1.0  # a constant column carries no distance
    z: np.ndarray = (x - mean) / std
    return z


def segment_learners(
    features: np.ndarray,
    feature_names: Sequence[str],
    *,
    k: int | None = None,
    k_range: tuple[int, int] = DEFAULT_K_RANGE,
    log_features: Sequence[str] = (),
    order_by: str | None = None,
    outcome: np.ndarray | None = None,
    labels_for_humans: Mapping[str, str] | None = None,
    random_state: int = 0,
    silhouette_sample: int = 2000,
) -> Segmentation:
    """Cluster learners (rows of ``features``) into behaviour segments; see the module doc."""
    names = tuple(feature_names)
    raw = np.asarray(features, dtype=float)
    z = standardize(raw, names, log_features)
    n = z.shape[0]
    if outcome is not None and len(outcome) != n:
        raise ValueError(f"outcome has {len(outcome)} rows, features {n}")
    if k is not None and k < 1:
        raise ValueError("k must be at least 1")

    distinct = len(np.unique(z, axis=0)) if n else 0
    note = ""
    if n < MIN_LEARNERS:
        note = f"too few learners to segment ({n} < {MIN_LEARNERS})"
    elif distinct < 2:
        note = "every learner has the same activity profile"
    if note:
        labels = np.zeros(n, dtype=int)
        return _result(raw, z, names, labels, 1, None, {}, outcome, labels_for_humans, note)

    k_scores: dict[int, float] = {}
    silhouette: float | None
    sample = min(n, silhouette_sample)
    if k is None:
        low, high = k_range
        candidates = [c for c in range(max(2, low), high + 1) if c < min(n, distinct + 1)]
        best: tuple[float, int, np.ndarray] | None = None
        for c in candidates:
            labels = _kmeans(z, c, random_state)
            if len(np.unique(labels)) < 2:
                continue
            score = float(
                silhouette_score(z, labels, sample_size=sample, random_state=random_state)
            )
            k_scores[c] = score
            if best is None or score > best[0]:
                best = (score, c, labels)
        if best is None:
            labels = np.zeros(n, dtype=int)
            return _result(
                raw, z, names, labels, 1, None, {}, outcome, labels_for_humans, "no k separated"
            )
        silhouette, chosen, labels = best
    else:
        chosen = min(k, distinct)
        labels = _kmeans(z, chosen, random_state) if chosen > 1 else np.zeros(n, dtype=int)
        silhouette = (
            float(silhouette_score(z, labels, sample_size=sample, random_state=random_state))
            if len(np.unique(labels)) > 1
            else None
        )
        if silhouette is not None:
            k_scores[chosen] = silhouette

    # Renumber: segment 0 has the highest mean of ``order_by`` (standardized).
    key = names.index(order_by) if order_by else 0
    present = np.unique(labels)
    order = sorted(present, key=lambda s: -z[labels == s, key].mean())
    remap = np.empty(labels.max() + 1, dtype=int)
    for new, old in enumerate(order):
        remap[old] = new
    labels = remap[labels]
    return _result(
        raw, z, names, labels, len(present), silhouette, k_scores, outcome, labels_for_humans, ""
    )


def _kmeans(z: np.ndarray, k: int, random_state: int) -> np.ndarray:
    model = KMeans(n_clusters=k, n_init=10, random_state=random_state)
    labels: np.ndarray = model.fit_predict(z).astype(int)
    return labels


def _project(z: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    n, d = z.shape
    components = min(2, n, d)
    out = np.zeros((n, 2))
    ratios = [0.0, 0.0]
    if components >= 1 and n >= 2 and np.any(z.std(axis=0) > 0):
        pca = PCA(n_components=components, random_state=0)
        out[:, :components] = pca.fit_transform(z)
        ratios[:components] = [float(r) for r in pca.explained_variance_ratio_]
    return out, (ratios[0], ratios[1])


def _result(
    raw: np.ndarray,
    z: np.ndarray,
    names: tuple[str, ...],
    labels: np.ndarray,
    k: int,
    silhouette: float | None,
    k_scores: dict[int, float],
    outcome: np.ndarray | None,
    labels_for_humans: Mapping[str, str] | None,
    note: str,
) -> Segmentation:
    n = len(labels)
    projection, ratios = _project(z) if n else (np.zeros((0, 2)), (0.0, 0.0))
    profiles = []
    for s in range(k if n else 0):
        mask = labels == s
        size = int(mask.sum())
        means: dict[str, float | None] = {}
        for j, name in enumerate(names):
            values = raw[mask, j]
            values = values[~np.isnan(values)]
            means[name] = float(values.mean()) if len(values) else None
        z_means = {name: float(z[mask, j].mean()) for j, name in enumerate(names)}
        rate = None
        if outcome is not None and size:
            rate = float(np.asarray(outcome, dtype=float)[mask].mean())
        profiles.append(
            SegmentProfile(
                segment=s,
                size=size,
                share=size / n,
                means=means,
                z_means=z_means,
                outcome_rate=rate,
                description=describe(z_means, s, k, labels_for_humans),
            )
        )
    return Segmentation(
        k=k,
        feature_names=names,
        labels=labels,
        projection=projection,
        explained_variance=ratios,
        profiles=tuple(profiles),
        silhouette=silhouette,
        k_scores=k_scores,
        note=note,
    )


def describe(
    z_means: Mapping[str, float],
    segment: int,
    k: int,
    labels_for_humans: Mapping[str, str] | None = None,
    threshold: float = 0.5,
) -> str:
    """A short human description: rank, then the two features that set the segment apart most.

    E.g. "Most active; high active days, low days since last activity".
    """
    if k <= 1:
        head = "All learners"
    elif segment == 0:
        head = "Most active"
    elif segment == k - 1:
        head = "Least active"
    else:
        head = f"Segment {segment + 1} of {k}"
    human = labels_for_humans or {}
    notable = sorted(
        ((name, v) for name, v in z_means.items() if abs(v) >= threshold),
        key=lambda item: -abs(item[1]),
    )[:2]
    if not notable:
        return head if k <= 1 else f"{head}; close to average"
    traits = ", ".join(f"{'high' if v > 0 else 'low'} {human.get(n, n)}" for n, v in notable)
    return f"{head}; {traits}"
