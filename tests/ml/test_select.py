import numpy as np
import torch
from torch import nn

from eduplatform.ml.select import gradient_ranking, lda, pca, permutation_ranking, select_top


def _data(n=500, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = (2 * X[:, 0] - X[:, 2] + 0.3 * rng.normal(size=n) > 0).astype(int)
    return X, y, ["strong", "noise1", "medium", "noise2"]


def test_permutation_ranking_finds_informative_columns():
    X, y, cols = _data()
    result = permutation_ranking(lambda A: 2 * A[:, 0] - A[:, 2], X, y, cols, n_repeats=2)
    assert result.selected[:2] == ["strong", "medium"]
    assert result.scores["noise1"] == 0.0
    top = select_top(result, k=2)
    assert top.selected == ["strong", "medium"]
    assert "top 2" in top.reason
    np.testing.assert_array_equal(top.transform(X, cols), X[:, [0, 2]])


def test_gradient_ranking_on_a_linear_model():
    X, _, cols = _data()
    lin = nn.Linear(4, 1)
    with torch.no_grad():
        lin.weight[:] = torch.tensor([[3.0, 0.0, -1.0, 0.1]])
    result = gradient_ranking(lambda x: lin(x).squeeze(1), X, cols)
    assert result.selected[0] == "strong"
    assert result.scores["noise1"] == 0.0


def test_pca_keeps_variance_and_projects():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(300, 1))
    X = np.hstack([z, 2 * z, rng.normal(scale=0.01, size=(300, 1))])
    result = pca(X, ["a", "b", "c"], variance=0.95)
    assert result.selected == ["pc1"]
    assert result.explained_variance_ratio[0] > 0.95
    assert result.transform(X, ["a", "b", "c"]).shape == (300, 1)


def test_lda_separates_classes():
    X, y, cols = _data()
    result = lda(X, y, cols)
    assert result.selected == ["ld1"]
    proj = result.transform(X, cols)[:, 0]
    separation = abs(proj[y == 1].mean() - proj[y == 0].mean()) / proj.std()
    assert separation > 1.0
    assert result.scores["strong"] > result.scores["noise2"]
