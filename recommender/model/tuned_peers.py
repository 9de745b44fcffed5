"""Time-aware peers whose settings are chosen on inner validation (days before the split,
never the test days): time-decayed popularity, item-to-item transitions and calendar.

Each peer scores a `Snapshot` (one run at one cut day) for some of its learners; `fit`
searches the peer's grid on `timeline.inner_cases` and keeps the best NDCG@10.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from recommender.model.timeline import Case, Params, Snapshot, ndcg_of_scores


class TunedPeer:
    """A scorer with a grid of settings chosen on inner validation."""

    name = "peer"

    def __init__(self, params: Params | None = None):
        self.p = params or Params()
        self.chosen: dict[str, Any] = {}
        self.tuning: list[tuple[dict[str, Any], float]] = []

    def grid(self) -> list[dict[str, Any]]:
        return [{}]

    def fit(self, inner_val: Sequence[Case]) -> TunedPeer:
        """Keep the setting with the best mean NDCG@10 over the inner cases."""
        best, best_setting = -1.0, self.grid()[0]
        snaps: dict[tuple[int, int], tuple[Snapshot, np.ndarray, np.ndarray]] = {}
        for setting in self.grid():
            self.chosen = setting
            vals = []
            for case in inner_val:
                key = (id(case.run), case.t)
                if key not in snaps:
                    rows, lab = case.labels()
                    snaps[key] = (Snapshot(case.run, case.t), rows, lab)
                snap, rows, lab = snaps[key]
                if len(rows):
                    vals.append(ndcg_of_scores(self.scores(snap, rows), snap.seen[rows], lab))
            score = float(np.concatenate(vals).mean()) if vals else 0.0
            self.tuning.append((setting, score))
            if score > best:
                best, best_setting = score, setting
        self.chosen = best_setting
        return self

    def scores(self, snap: Snapshot, rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class DecayedPopularity(TunedPeer):
    """Sum over learner-days (or clicks) of 0.5 ** (age / half_life)."""

    name = "decayed_popularity"

    def grid(self) -> list[dict[str, Any]]:
        return [
            {"half_life": h, "unit": u}
            for h in self.p.peer_half_lives
            for u in ("visits", "clicks")
        ]

    def scores(self, snap: Snapshot, rows: np.ndarray) -> np.ndarray:
        pop = snap.decayed(self.chosen["half_life"], self.chosen["unit"])
        return np.broadcast_to(pop, (len(rows), snap.I))


class Transitions(TunedPeer):
    """What learners first open next after the items this learner visited lately (ties
    broken by a tiny share of 7-day decayed popularity)."""

    name = "transitions"

    def grid(self) -> list[dict[str, Any]]:
        return [
            {"next": n, "window": w, "src": s}
            for n, w, s in itertools.product(
                self.p.peer_trans_next, self.p.peer_trans_windows, self.p.peer_trans_src
            )
        ]

    def scores(self, snap: Snapshot, rows: np.ndarray) -> np.ndarray:
        c = self.chosen
        tr = snap.trans_scores(rows, c["next"], c["window"], c["src"], self.p.src_days)
        pop = snap.decayed(7.0)
        out: np.ndarray = tr + 1e-6 * pop / max(pop.max(initial=0.0), 1e-9)
        return out


class Calendar(TunedPeer):
    """Items whose week_from is in [current week + lo, current week + hi] (not yet opened:
    opened items are never recommended) first, by decayed popularity, then every other
    item by decayed popularity."""

    name = "calendar"

    def grid(self) -> list[dict[str, Any]]:
        return [
            {"weeks": w, "half_life": h}
            for w in self.p.peer_calendar_weeks
            for h in self.p.peer_half_lives
        ]

    def scores(self, snap: Snapshot, rows: np.ndarray) -> np.ndarray:
        pop = snap.decayed(self.chosen["half_life"])
        pop = pop / max(pop.max(initial=0.0), 1e-9)
        cal = snap.calendar_mask(*self.chosen["weeks"]).astype(float)
        return np.broadcast_to(2.0 * cal + pop, (len(rows), snap.I))


TUNED_PEERS: dict[str, type[TunedPeer]] = {
    "decayed_popularity": DecayedPopularity,
    "transitions": Transitions,
    "calendar": Calendar,
}
