"""Why an item is recommended (first rule that applies) and which items are similar.

The rules are the product's since #7: "usually follows <item>" (a strong transition from
an item the learner visited lately; `related_item` names it), "new this week for your
course", "most used by your cohort this week", "used by your cohort this week", "used by
your cohort earlier in the course", "not opened yet by your cohort (<type>)". The follow
link is the ranker's own transition matrix (share of the learners who first opened j
that opened i among their next first visits within 14 days).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from recommender.model.parts import ItemPart, Recommendation
from recommender.model.timeline import TYPES, LearnerBlock, Params, source_weights

if TYPE_CHECKING:
    from recommender.model.run_state import RunDerived

FOLLOW_REASON_MIN = 0.15  # share of the learner's recent items' follow signal
FOLLOW_REASON_WEAK = 0.05  # a weaker follow link still beats a generic reason
TOP_USE_RANK = 0.75  # "most used this week": top quarter of the run's items by 7-day use
RECENT_HALF_LIFE = 7.0  # recency weight of the learner's items for the follow link
RECENT_DAYS = 28


def _rows(trans: Any, rows: np.ndarray, cols: Any) -> np.ndarray:
    """trans[rows][:, cols] as a dense array (dense or sparse transitions)."""
    sub = trans[rows][:, cols]
    return np.asarray(sub.toarray() if hasattr(sub, "toarray") else sub, dtype=np.float64)


def _best_sources(
    part: ItemPart, lb: LearnerBlock, top: np.ndarray, p: Params
) -> dict[int, tuple[float, int]]:
    """The strongest "j -> i" link from the learner's recent items j, per top item i."""
    view = part.view
    recent = source_weights(view.t, lb.last, RECENT_HALF_LIFE, RECENT_DAYS)[0]
    src = np.flatnonzero(recent > 0)
    total = float(recent.sum())
    if not len(src) or total <= 0:
        return {}
    contrib = _rows(view.transitions(p.trans_next, p.trans_window), src, top)
    contrib *= recent[src][:, None] / total
    best = np.argmax(contrib, axis=0)
    return {
        int(i): (float(contrib[best[c], c]), int(src[best[c]]))
        for c, i in enumerate(top)
        if contrib[best[c], c] > 0
    }


def explain(
    part: ItemPart, lb: LearnerBlock, top: np.ndarray, scores: np.ndarray, p: Params
) -> list[Recommendation]:
    """One Recommendation per top item with its reason (first rule that applies)."""
    view = part.view
    run = view.run
    now = view.t
    first_any = view.derived.first_any
    best = _best_sources(part, lb, top, p)
    week = now // 7
    out = []
    for i in top:
        item_id = int(run.item_ids[i])
        related = None
        share, j = best.get(int(i), (0.0, -1))
        fa = float(first_any[i])
        wf = run.week_from[i]
        opened = np.isfinite(fa)
        new = (opened and now - 7 <= fa < now) or (
            not opened and not np.isnan(wf) and int(wf) == week
        )
        if share >= FOLLOW_REASON_MIN or (
            share >= FOLLOW_REASON_WEAK and not new and part.used_7d_rank[i] < TOP_USE_RANK
        ):
            related = int(run.item_ids[j])
            reason = f"usually follows {related}"
        elif new:
            reason = "new this week for your course"
        elif part.used_7d[i] > 0 and part.used_7d_rank[i] >= TOP_USE_RANK:
            reason = "most used by your cohort this week"
        elif part.used_7d[i] > 0:
            reason = "used by your cohort this week"
        elif opened:
            reason = "used by your cohort earlier in the course"
        else:
            reason = f"not opened yet by your cohort ({TYPES[int(run.item_type[i])]})"
        out.append(Recommendation(item_id, float(scores[i]), reason, related))
    return out


def covisits(derived: RunDerived, i: int) -> np.ndarray:
    """(I,) cosine similarity of item i with every item over who opened them."""
    s = derived.state
    order, off = derived.item_learners()
    learners = derived.learner[order[off[i] : off[i + 1]]]
    offsets = s.offsets.astype(np.int64)
    if not len(learners):
        return np.zeros(s.n_items)
    items = np.concatenate([s.p_item[offsets[u] : offsets[u + 1]] for u in learners])
    both = np.bincount(items.astype(np.int64), minlength=s.n_items).astype(np.float64)
    norm = np.sqrt(np.maximum(derived.opened, 1) * max(len(learners), 1))
    sim: np.ndarray = both / norm
    sim[i] = 0.0
    return sim


def similar(derived: RunDerived, i: int, k: int, p: Params) -> list[Recommendation]:
    """Co-visited items, then items that usually follow it, then the same type."""
    s = derived.state
    name = int(s.item_ids[i])
    chosen: list[tuple[int, float, str]] = []
    seen = {i}
    follows = _rows(derived.transitions(p.trans_next, p.trans_window), np.array([i]), slice(None))
    for vals, label in (
        (covisits(derived, i), "often opened together with"),
        (follows[0], "usually follows"),
    ):
        for j in np.argsort(-vals, kind="stable")[: k + 1]:
            if vals[j] > 0 and int(j) not in seen and len(chosen) < k:
                seen.add(int(j))
                chosen.append((int(j), float(vals[j]), f"{label} {name}"))
    if len(chosen) < k:
        kind = TYPES[int(s.item_type[i])]
        same = np.flatnonzero(s.item_type == s.item_type[i])
        for j in same[np.argsort(-derived.opened[same], kind="stable")]:
            if int(j) not in seen and len(chosen) < k:
                seen.add(int(j))
                chosen.append((int(j), 0.0, f"same kind of content ({kind})"))
    return [Recommendation(int(s.item_ids[j]), v, r, name) for j, v, r in chosen]
