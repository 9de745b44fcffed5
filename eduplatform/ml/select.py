"""Feature selection: importance ranking, PCA and LDA, with the reason recorded.

- `permutation_ranking`: drop in a metric (default ROC-AUC) when one column is
  shuffled, for any fitted predictor ``predict(X) -> scores``; model-agnostic.
- `gradient_ranking`: mean |d output / d input| x std of the input, for a
  differentiable torch model (cheap: one backward pass).
- `select_top`: keep the top-k (or those above a minimum importance).
- `pca` / `lda`: projections fitted with scikit-learn; the result keeps the
  components so the projection can be saved (arrays) and applied later.

Every function returns a `SelectionResult` naming the method, the columns kept,
their scores and a plain-words reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

from eduplatform.ml.metrics import roc_auc


@dataclass
class SelectionResult:
    method: str
    selected: list[str]
    scores: dict[str, float]
    reason: str
    components: np.ndarray | None = None  # (n_components, n_features) for pca/lda
    mean: np.ndarray | None = None
    explained_variance_ratio: list[float] = field(default_factory=list)

    def ranking(self) -> list[tuple[str, float]]:
        return sorted(self.scores.items(), key=lambda kv: -kv[1])

    def transform(self, X: np.ndarray, columns: list[str]) -> np.ndarray:
        """Apply the selection (column subset) or the projection (pca/lda)."""
        X = np.asarray(X, dtype=float)
        if self.components is not None:
            centred = X - (self.mean if self.mean is not None else 0.0)
            projected: np.ndarray = centred @ self.components.T
            return projected
        index = [columns.index(c) for c in self.selected]
        return X[:, index]

    def to_config(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "selected": self.selected,
            "scores": self.scores,
            "reason": self.reason,
            "explained_variance_ratio": self.explained_variance_ratio,
        }


def permutation_ranking(
    predict: Callable[[np.ndarray], np.ndarray],
    X: np.ndarray,
    y: np.ndarray,
    columns: list[str],
    metric: Callable[[np.ndarray, np.ndarray], float] = roc_auc,
    n_repeats: int = 3,
    seed: int = 0,
) -> SelectionResult:
    """Importance = metric(original) - mean metric(column shuffled); higher = more useful."""
    X = np.asarray(X, dtype=float)
    rng = np.random.default_rng(seed)
    base = metric(y, predict(X))
    scores = {}
    for j, name in enumerate(columns):
        drops = []
        for _ in range(n_repeats):
            shuffled = X.copy()
            shuffled[:, j] = rng.permutation(shuffled[:, j])
            drops.append(base - metric(y, predict(shuffled)))
        scores[name] = float(np.mean(drops))
    return SelectionResult(
        method="permutation",
        selected=[n for n, _ in sorted(scores.items(), key=lambda kv: -kv[1])],
        scores=scores,
        reason=f"ranked by the mean drop of the metric (base {base:.4f}) over "
        f"{n_repeats} shuffles of each column",
    )


def gradient_ranking(
    model: Callable[..., torch.Tensor],
    X: np.ndarray,
    columns: list[str],
    extra_inputs: Sequence[torch.Tensor] = (),
) -> SelectionResult:
    """Mean |gradient| x input std per column of a torch model's first input."""
    import torch

    x = torch.tensor(np.asarray(X, dtype=np.float32), requires_grad=True)
    if hasattr(model, "eval"):
        model.eval()
    out = model(x, *extra_inputs)
    # torch.Tensor.backward is unannotated in torch's own sources (torch 2.13)
    out.sum().backward()  # type: ignore[no-untyped-call]
    assert x.grad is not None
    grad = x.grad.abs().mean(dim=0).numpy()
    std = np.asarray(X, dtype=float).std(axis=0)
    scores = {name: float(g * s) for name, g, s in zip(columns, grad, std, strict=True)}
    return SelectionResult(
        method="gradient",
        selected=[n for n, _ in sorted(scores.items(), key=lambda kv: -kv[1])],
        scores=scores,
        reason="ranked by mean |d output / d input| times the input's standard deviation",
    )


def select_top(
    ranking: SelectionResult, k: int | None = None, min_score: float | None = None
) -> SelectionResult:
    """Keep the k best columns and/or those whose score is at least `min_score`."""
    ordered = ranking.ranking()
    kept = [n for n, s in ordered if min_score is None or s >= min_score]
    if k is not None:
        kept = kept[:k]
    parts = []
    if k is not None:
        parts.append(f"top {k}")
    if min_score is not None:
        parts.append(f"score >= {min_score:g}")
    return SelectionResult(
        method=f"{ranking.method}-top",
        selected=kept,
        scores=ranking.scores,
        reason=f"{ranking.reason}; kept {' and '.join(parts) or 'all'} ({len(kept)} columns)",
    )


def pca(
    X: np.ndarray, columns: list[str], variance: float = 0.95, seed: int = 0
) -> SelectionResult:
    """Principal components explaining `variance` of the (standardized) inputs."""
    from sklearn.decomposition import PCA

    model = PCA(n_components=variance, svd_solver="full", random_state=seed)
    model.fit(np.asarray(X, dtype=float))
    loading = np.abs(model.components_).T @ model.explained_variance_ratio_
    scores = {name: float(v) for name, v in zip(columns, loading, strict=True)}
    n = int(model.n_components_)
    return SelectionResult(
        method="pca",
        selected=[f"pc{i + 1}" for i in range(n)],
        scores=scores,
        reason=f"{n} principal components keep {model.explained_variance_ratio_.sum():.3f} "
        f"of the variance (asked {variance})",
        components=model.components_.copy(),
        mean=model.mean_.copy(),
        explained_variance_ratio=[float(v) for v in model.explained_variance_ratio_],
    )


def lda(
    X: np.ndarray, y: np.ndarray, columns: list[str], n_components: int | None = None
) -> SelectionResult:
    """Linear discriminant directions (at most n_classes - 1) separating the labels."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    X = np.asarray(X, dtype=float)
    model = LinearDiscriminantAnalysis(n_components=n_components, solver="svd")
    model.fit(X, y)
    k = model.scalings_.shape[1] if n_components is None else n_components
    k = min(k, len(np.unique(y)) - 1)
    components = model.scalings_[:, :k].T
    weight = np.abs(components).sum(axis=0) * X.std(axis=0)
    scores = {name: float(v) for name, v in zip(columns, weight, strict=True)}
    ratio = getattr(model, "explained_variance_ratio_", np.ones(k))[:k]
    return SelectionResult(
        method="lda",
        selected=[f"ld{i + 1}" for i in range(k)],
        scores=scores,
        reason=f"{k} linear discriminant direction(s) for {len(np.unique(y))} classes; "
        "columns scored by |scaling| x std",
        components=components,
        mean=model.xbar_.copy(),
        explained_variance_ratio=[float(v) for v in ratio],
    )
