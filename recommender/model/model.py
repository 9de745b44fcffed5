"""The scoring network: plain `nn.Linear` layers over (item, learner, learner x item)
features plus an item-embedding dot product.

    h      = relu(item_in(item_x)[None] + learner_in(learner_x)[:, None] + pair_in(pair_x))
    h      = relu(hidden(h))
    score  = out(h) + <context(learner), item_emb(item)>
    context(learner) = weighted mean of ctx_emb over the learner's visited items

The three input layers are one linear layer over the concatenated features,
split so that the item part is computed once per item (not once per learner x
item). Embeddings are indexed by a global item row; row `n_items` is the padding
row (zeros, never trained) used by items added after training, which are then
scored by their features alone (activity type, release week, cohort usage).

Keep the layers plain `nn.Linear` / `nn.Embedding` and call them as modules: the
compression step swaps them for pruned / int8 / low-rank versions.
"""

from __future__ import annotations

import torch
from torch import nn


class ScoringNet(nn.Module):
    def __init__(
        self,
        n_item_features: int,
        n_learner_features: int,
        n_pair_features: int,
        n_items: int,
        hidden: int = 64,
        hidden2: int = 32,
        emb_dim: int = 16,
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.item_in = nn.Linear(n_item_features, hidden)
        self.learner_in = nn.Linear(n_learner_features, hidden, bias=False)
        self.pair_in = nn.Linear(n_pair_features, hidden, bias=False)
        self.hidden = nn.Linear(hidden, hidden2)
        self.out = nn.Linear(hidden2, 1)
        self.emb_dim = emb_dim
        if emb_dim > 0:
            self.item_emb = nn.Embedding(n_items + 1, emb_dim, padding_idx=n_items)
            self.ctx_emb = nn.Embedding(n_items + 1, emb_dim, padding_idx=n_items)
            with torch.no_grad():
                self.item_emb.weight.normal_(0.0, 0.01)
                self.ctx_emb.weight.normal_(0.0, 0.01)
                self.item_emb.weight[n_items].zero_()
                self.ctx_emb.weight[n_items].zero_()

    def item_hidden(self, item_x: torch.Tensor) -> torch.Tensor:
        """The per-item part of the first layer, (n_items, hidden); cacheable per run and day."""
        h: torch.Tensor = self.item_in(item_x)
        return h

    def forward(
        self,
        item_h: torch.Tensor,  # (n_items, hidden) from item_hidden
        learner_x: torch.Tensor,  # (B, n_learner_features)
        pair_x: torch.Tensor,  # (B, n_items, n_pair_features), or (B, C, .) with cand
        item_rows: torch.Tensor,  # (n_items,) long, global embedding rows
        ctx_weight: torch.Tensor,  # (B, n_items) weights of the learner's visited items
        cand: torch.Tensor | None = None,  # (B, C) long: score only these items (training)
    ) -> torch.Tensor:
        """Scores (B, n_items), or (B, C) for the candidate subsets `cand`."""
        ih = item_h.unsqueeze(0) if cand is None else item_h[cand]
        h = ih + self.learner_in(learner_x).unsqueeze(1) + self.pair_in(pair_x)
        h = torch.relu(self.hidden(torch.relu(h)))
        score: torch.Tensor = self.out(h).squeeze(-1)
        if self.emb_dim > 0:
            total = ctx_weight.sum(1, keepdim=True)
            norm = ctx_weight / total.clamp_min(1e-6)
            ctx = norm @ self.ctx_emb(item_rows)  # (B, D)
            if cand is None:
                score = score + ctx @ self.item_emb(item_rows).T
            else:
                vecs = self.item_emb(item_rows[cand])  # (B, C, D)
                score = score + (vecs * ctx.unsqueeze(1)).sum(-1)
        return score
