"""The serving object: `Recommender.fit(data, as_of_day)`, `recommend`, `similar_items`,
`to_state` / `from_state` (tensors + JSON config for eduplatform.ml.artifacts).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import torch

from eduplatform.ml.data import LearningData
from recommender.model.features import (
    N_LEARNER_FEATURES,
    N_PAIR_FEATURES,
    ItemGraph,
    ItemTimeline,
    LearnerBatch,
    Neighbours,
    item_features,
    learner_batch,
    n_item_features,
    pair_features,
    percentile_rank,
)
from recommender.model.interactions import PairTable, pair_table
from recommender.model.model import ScoringNet
from recommender.model.parts import ItemPart, Recommendation
from recommender.model.runs import (
    CourseId,
    CourseRun,
    as_int_ids,
    build_runs,
    type_vocabulary,
)
from recommender.model.train import TrainConfig, WarmStart, train_net

STATE_FORMAT = "eduplatform.recommender/1"
FOLLOW_REASON_MIN = 0.15  # share of the learner's recent items' follow signal
FOLLOW_REASON_WEAK = 0.05  # a weaker follow link still beats a generic reason
TOP_USE_RANK = 0.75  # "most used this week": top quarter of the run's items by 7-day use
_CACHE_SIZE = 64
# A learner's own click history: a DataFrame or rows of (item_id, day, clicks).
History: TypeAlias = pd.DataFrame | Iterable[tuple[int, int, float]]


class Recommender:
    """Ranks the items of a course run for a learner at a day of the run."""

    def __init__(
        self,
        net: ScoringNet,
        runs: list[CourseRun],
        type_vocab: list[str],
        config: TrainConfig,
        stats: dict[str, Any] | None = None,
    ) -> None:
        self.net = net.eval()
        self.runs = {run.course_id: run for run in runs}
        self.type_vocab = list(type_vocab)
        self.config = config
        self.stats = stats or {}
        self._cache: OrderedDict[tuple[CourseId, int], ItemPart] = OrderedDict()
        self._graphs: dict[CourseId, ItemGraph] = {}
        self._item_run: dict[int, CourseId] | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def fit(
        cls,
        data: LearningData,
        as_of_day: int | dict[Any, int],
        config: TrainConfig | None = None,
        course_ids: Sequence[CourseId] | None = None,
        log: Callable[[str], None] | None = None,
        warm_start: Recommender | None = None,
    ) -> Recommender:
        """Train on the clicks of `data` dated before `as_of_day` (one int, or per course run).

        `stats` records the wall and CPU seconds of the whole fit (state building
        and training) and of the training part alone. With `warm_start` (a previous
        Recommender) the network starts from its weights when the schema allows
        (`train.apply_warm_start`); `stats["warm_start"]` is None when it did not.
        """
        started, cpu_started = time.perf_counter(), time.process_time()
        config = config or TrainConfig()
        vocab = type_vocabulary(data.items)
        runs = build_runs(
            data,
            as_of_day,
            vocab,
            config.half_life_days,
            config.follow_window,
            config.neighbours,
            keep_raw=True,
            course_ids=course_ids,
        )
        warm = None
        if warm_start is not None:
            warm = WarmStart.of(
                warm_start.net, list(warm_start.runs.values()), warm_start.type_vocab
            )
        net, stats = train_net(runs, len(vocab), config, log=log, warm_start=warm, type_vocab=vocab)
        for run in runs:
            run.raw = None
            run.follow_all = None
        stats["fit_seconds"] = round(time.perf_counter() - started, 2)
        stats["fit_cpu_seconds"] = round(time.process_time() - cpu_started, 2)
        return cls(net, runs, vocab, config, stats)

    @property
    def n_types(self) -> int:
        return len(self.type_vocab)

    def course_ids(self) -> list[CourseId]:
        return list(self.runs)

    def _run(self, course: CourseId) -> CourseRun:
        try:
            return self.runs[course]
        except KeyError:
            raise KeyError(f"unknown course run {course!r}") from None

    def add_items(
        self,
        course: CourseId,
        item_ids: Iterable[int],
        activity_types: Iterable[str],
        week_from: Iterable[float | None] | None = None,
    ) -> None:
        """Add items created after training: scored from type and release week (no embedding)."""
        run = self._run(course)
        ids = as_int_ids(np.asarray(list(item_ids)), "item")
        types = list(activity_types)
        weeks = list(week_from) if week_from is not None else [None] * len(ids)
        if not (len(ids) == len(types) == len(weeks)):
            raise ValueError("item_ids, activity_types and week_from differ in length")
        new = [k for k, i in enumerate(ids) if int(i) not in run.item_index]
        if not new:
            return
        vocab = {t: i for i, t in enumerate(self.type_vocab)}
        n_new = len(new)
        pad = self.net.n_items
        tl = run.timeline
        zeros = np.zeros((n_new, tl.cum_rows.shape[1]), dtype=np.float32)
        run.item_ids = np.concatenate([run.item_ids, ids[new]])
        run.item_type = np.concatenate(
            [run.item_type, np.array([vocab.get(str(types[k]), 0) for k in new], dtype=np.int64)]
        )
        run.week_from = np.concatenate(
            [
                run.week_from,
                np.array([np.nan if (week := weeks[k]) is None else float(week) for k in new]),
            ]
        )
        run.emb_rows = np.concatenate([run.emb_rows, np.full(n_new, pad, dtype=np.int64)])
        run.timeline = ItemTimeline(
            day0=tl.day0,
            cum_rows=np.concatenate([tl.cum_rows, zeros]),
            cum_first=np.concatenate([tl.cum_first, zeros]),
            cum_clicks=np.concatenate([tl.cum_clicks, zeros]),
            cum_first_daysum=np.concatenate([tl.cum_first_daysum, zeros.astype(np.float64)]),
            cum_learners=tl.cum_learners,
            first_active=np.concatenate([tl.first_active, np.full(n_new, np.inf)]),
        )
        run.covisit = run.covisit.append_items(n_new)
        run.follows = run.follows.append_items(n_new)
        run.reset_indexes()
        self._cache.clear()
        self._graphs.pop(course, None)
        self._item_run = None

    # ------------------------------------------------------------------ scoring

    def _graph(self, run: CourseRun) -> ItemGraph:
        """Neighbour tensors of a run (do not depend on the day; cached per run)."""
        graph = self._graphs.get(run.course_id)
        if graph is None:
            graph = self._graphs[run.course_id] = ItemGraph.build(run.covisit, run.follows)
        return graph

    def _item_part(self, run: CourseRun, now_day: int) -> ItemPart:
        key = (run.course_id, int(now_day))
        part = self._cache.get(key)
        if part is not None:
            self._cache.move_to_end(key)
            return part
        x = torch.from_numpy(
            item_features(run.timeline, now_day, run.item_type, run.week_from, self.n_types)
        )
        center, known = run.timeline.center(now_day)
        used_7d = run.timeline.window(run.timeline.cum_rows, now_day, 7)
        with torch.inference_mode():
            item_h = self.net.item_hidden(x)
        part = ItemPart(
            item_x=x,
            item_h=item_h,
            item_type=torch.from_numpy(run.item_type),
            center=torch.from_numpy(center.astype(np.float32)),
            center_known=torch.from_numpy(known),
            graph=self._graph(run),
            rows=torch.from_numpy(run.emb_rows),
            used_7d=used_7d,
            used_7d_rank=percentile_rank(used_7d),
            first_active=run.timeline.first_active,
        )
        self._cache[key] = part
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return part

    def _score(
        self,
        run: CourseRun,
        part: ItemPart,
        pairs: PairTable,
        learners: np.ndarray,
        now_day: int,
        offsets: np.ndarray,
    ) -> tuple[torch.Tensor, LearnerBatch]:
        lb, px = self._learner_inputs(part, pairs, learners, run, now_day, offsets)
        with torch.inference_mode():
            scores: torch.Tensor = self.net(part.item_h, lb.learner_x, px, part.rows, lb.weight)
        return scores, lb

    def _learner_inputs(
        self,
        part: ItemPart,
        pairs: PairTable,
        learners: np.ndarray,
        run: CourseRun,
        now_day: int,
        offsets: np.ndarray,
    ) -> tuple[LearnerBatch, torch.Tensor]:
        lb = learner_batch(pairs, learners, run.n_items, now_day, offsets)
        px = pair_features(
            lb, part.graph, part.item_type, self.n_types, part.center, part.center_known
        )
        return lb, px

    def model_inputs(
        self, course: CourseId, learner_rows: np.ndarray, now_day: int | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The network's raw inputs for learner rows of a run at a day: (item_x, learner_x,
        pair_x, item_rows, ctx_weight, visited); `net.item_hidden(item_x)` gives the first
        argument of `net(...)`. For compression and distillation, which swap networks."""
        run = self._run(course)
        now = run.as_of if now_day is None else int(now_day)
        part = self._item_part(run, now)
        pairs = run.pairs.rescaled(now, self.config.half_life_days)
        rows = np.asarray(learner_rows, dtype=np.int64)
        lb, px = self._learner_inputs(part, pairs, rows, run, now, run.offsets)
        return part.item_x, lb.learner_x, px, part.rows, lb.weight, lb.visited

    def _learner_pairs(
        self, run: CourseRun, learner: int | None, now_day: int, history: History | None
    ) -> PairTable:
        """The learner's pairs at now_day as a one-learner table (learner row 0)."""
        if history is not None:
            frame = (
                history
                if isinstance(history, pd.DataFrame)
                else pd.DataFrame(list(history), columns=["item_id", "day", "clicks"])
            )
            if frame.empty:
                return pair_table(*(np.zeros(0, dtype=np.int64),) * 4, run.n_items, now_day)
            index = run.item_index
            rows = np.array([index.get(int(i), -1) for i in frame["item_id"]], dtype=np.int64)
            ok = rows >= 0
            return pair_table(
                np.zeros(int(ok.sum()), dtype=np.int64),
                rows[ok],
                frame["day"].to_numpy(np.int64)[ok],
                frame["clicks"].to_numpy(np.float64)[ok],
                run.n_items,
                now_day,
                self.config.half_life_days,
            ).compact()
        row = run.learner_index.get(int(learner)) if learner is not None else None
        p = run.pairs
        sl = slice(0, 0) if row is None else slice(int(run.offsets[row]), int(run.offsets[row + 1]))
        sub = PairTable(
            np.zeros(sl.stop - sl.start, dtype=np.int32),
            p.item[sl],
            p.weight[sl],
            p.clicks[sl],
            p.first_day[sl],
            p.last_day[sl],
            p.day,
        )
        if now_day < p.day:  # asked about the past: drop what was opened later (approximate)
            keep = sub.first_day < now_day
            sub = PairTable(
                sub.learner[keep],
                sub.item[keep],
                sub.weight[keep],
                sub.clicks[keep],
                sub.first_day[keep],
                np.minimum(sub.last_day[keep], now_day - 1),
                p.day,
            )
        return sub.rescaled(now_day, self.config.half_life_days)

    def score_learners(
        self,
        course: CourseId,
        learner_ids: Iterable[int],
        now_day: int | None = None,
        batch_size: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores (learners x run items, item order = `item_ids(course)`) and the visited mask.

        Uses the stored history (clicks before the as-of day); for offline evaluation.
        """
        run = self._run(course)
        now = run.as_of if now_day is None else int(now_day)
        part = self._item_part(run, now)
        pairs = run.pairs.rescaled(now, self.config.half_life_days)
        index = run.learner_index
        rows = np.array([index.get(int(u), -1) for u in learner_ids], dtype=np.int64)
        out = np.zeros((len(rows), run.n_items), dtype=np.float32)
        visited = np.zeros((len(rows), run.n_items), dtype=bool)
        known = np.flatnonzero(rows >= 0)
        for start in range(0, len(known), batch_size):
            sel = known[start : start + batch_size]
            scores, lb = self._score(run, part, pairs, rows[sel], now, run.offsets)
            out[sel] = scores.numpy()
            visited[sel] = lb.visited.numpy()
        cold = np.flatnonzero(rows < 0)
        if len(cold):
            empty = self._learner_pairs(run, None, now, None)
            scores, _ = self._score(
                run, part, empty, np.zeros(1, dtype=np.int64), now, np.zeros(2, dtype=np.int64)
            )
            out[cold] = scores.numpy()[0]
        return out, visited

    def item_ids(self, course: CourseId) -> np.ndarray:
        return self._run(course).item_ids.copy()

    def recommend(
        self,
        learner: int | None,
        course: CourseId,
        k: int = 10,
        now_day: int | None = None,
        history: History | None = None,
        include_visited: bool = False,
    ) -> list[Recommendation]:
        """Top-k items of `course` for `learner` at `now_day` (default: the run's as-of day).

        The learner's history is the stored one (clicks before the as-of day), or
        `history` (DataFrame or iterable of (item_id, day, clicks)) when given.
        An unknown learner without history gets the cohort's current favourites.
        Visited items are left out unless `include_visited`.
        """
        run = self._run(course)
        now = run.as_of if now_day is None else int(now_day)
        part = self._item_part(run, now)
        pairs = self._learner_pairs(run, learner, now, history)
        offsets = np.array([0, len(pairs)], dtype=np.int64)
        scores, lb = self._score(run, part, pairs, np.zeros(1, dtype=np.int64), now, offsets)
        s = scores[0]
        if not include_visited:
            s = s.masked_fill(lb.visited[0], float("-inf"))
        k = min(k, int(torch.isfinite(s).sum()))
        if k <= 0:
            return []
        top = torch.topk(s, k).indices.numpy()
        return self._explain(run, part, pairs, lb, top, s.numpy(), now)

    def _explain(
        self,
        run: CourseRun,
        part: ItemPart,
        pairs: PairTable,
        lb: LearnerBatch,
        top: np.ndarray,
        scores: np.ndarray,
        now: int,
    ) -> list[Recommendation]:
        recent = lb.recent[0].numpy()
        src = np.flatnonzero(recent > 0)
        rsum = float(recent.sum())
        # the strongest "j -> i" follow link from the learner's recent items j, per top item i
        best_src: dict[int, tuple[float, int]] = {}
        if len(src) and rsum > 0:
            fol_idx = run.follows.idx[src]
            rows, cols = np.nonzero(np.isin(fol_idx, top) & (run.follows.val[src] > 0))
            contrib = run.follows.val[src][rows, cols] * recent[src][rows] / rsum
            for j, i, c in zip(src[rows], fol_idx[rows, cols], contrib, strict=True):
                if c > best_src.get(int(i), (0.0, -1))[0]:
                    best_src[int(i)] = (float(c), int(j))
        week = now // 7
        out = []
        for i in top:
            item_id = int(run.item_ids[i])
            related = None
            share, j = best_src.get(int(i), (0.0, -1))
            fa = part.first_active[i]
            wf = run.week_from[i]
            new = (np.isfinite(fa) and now - 7 <= fa < now) or (
                not np.isfinite(fa) and not np.isnan(wf) and int(wf) == week
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
            elif np.isfinite(fa):
                reason = "used by your cohort earlier in the course"
            else:
                kind = self.type_vocab[int(run.item_type[i])]
                reason = f"not opened yet by your cohort ({kind})"
            out.append(Recommendation(item_id, float(scores[i]), reason, related))
        return out

    def similar_items(
        self, item_id: int, k: int = 10, course: CourseId | None = None
    ) -> list[Recommendation]:
        """Items often opened by the same learners (co-visit), then follow-ups, then same type."""
        run, i = self._locate(item_id, course)
        chosen: list[tuple[int, float, str]] = []
        seen = {i}
        name = int(run.item_ids[i])
        for nb, label in (
            (run.covisit, "often opened together with"),
            (run.follows, "usually follows"),
        ):
            for j, v in zip(nb.idx[i], nb.val[i], strict=True):
                if v > 0 and int(j) not in seen and len(chosen) < k:
                    seen.add(int(j))
                    chosen.append((int(j), float(v), f"{label} {name}"))
        if len(chosen) < k:
            used = run.timeline.window(run.timeline.cum_first, run.as_of, None)
            same = np.flatnonzero(run.item_type == run.item_type[i])
            kind = self.type_vocab[int(run.item_type[i])]
            for j in same[np.argsort(-used[same], kind="stable")]:
                if int(j) not in seen and len(chosen) < k:
                    seen.add(int(j))
                    chosen.append((int(j), 0.0, f"same kind of content ({kind})"))
        return [Recommendation(int(run.item_ids[j]), v, r, name) for j, v, r in chosen]

    def _locate(self, item_id: int, course: CourseId | None) -> tuple[CourseRun, int]:
        if course is not None:
            run = self._run(course)
            if int(item_id) not in run.item_index:
                raise KeyError(f"unknown item {item_id!r} in course run {course!r}")
            return run, run.item_index[int(item_id)]
        if self._item_run is None:
            self._item_run = {}
            for run in self.runs.values():
                for iid in run.item_ids:
                    self._item_run.setdefault(int(iid), run.course_id)
        cid = self._item_run.get(int(item_id))
        if cid is None:
            raise KeyError(f"unknown item {item_id!r}")
        run = self.runs[cid]
        return run, run.item_index[int(item_id)]

    # ------------------------------------------------------------------ state

    def to_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {
            f"net.{k}": v.detach().clone() for k, v in self.net.state_dict().items()
        }
        runs_cfg = []
        for r, run in enumerate(self.runs.values()):
            p = f"runs.{r}."
            tl, pr = run.timeline, run.pairs
            arrays = {
                "item_ids": run.item_ids,
                "item_type": run.item_type,
                "week_from": run.week_from,
                "emb_rows": run.emb_rows,
                "learner_ids": run.learner_ids,
                "cum_rows": tl.cum_rows,
                "cum_first": tl.cum_first,
                "cum_clicks": tl.cum_clicks,
                "cum_first_daysum": tl.cum_first_daysum,
                "cum_learners": tl.cum_learners,
                "first_active": tl.first_active,
                "pairs.learner": pr.learner,
                "pairs.item": pr.item,
                "pairs.weight": pr.weight,
                "pairs.clicks": pr.clicks,
                "pairs.first_day": pr.first_day,
                "pairs.last_day": pr.last_day,
                "covisit.idx": run.covisit.idx,
                "covisit.val": run.covisit.val,
                "follows.idx": run.follows.idx,
                "follows.val": run.follows.val,
            }
            for name, arr in arrays.items():
                tensors[p + name] = torch.from_numpy(np.ascontiguousarray(arr).copy())
            runs_cfg.append(
                {
                    "course_id": run.course_id,
                    "as_of": run.as_of,
                    "day0": tl.day0,
                    "pairs_day": pr.day,
                }
            )
        net = self.net
        config = {
            "format": STATE_FORMAT,
            "train": self.config.to_dict(),
            "type_vocab": self.type_vocab,
            "runs": runs_cfg,
            "net": {
                "n_item_features": net.item_in.in_features,
                "n_learner_features": net.learner_in.in_features,
                "n_pair_features": net.pair_in.in_features,
                "n_items": net.n_items,
                "hidden": net.item_in.out_features,
                "hidden2": net.hidden.out_features,
                "emb_dim": net.emb_dim,
            },
            "stats": self.stats,
        }
        return tensors, config

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> Recommender:
        if config.get("format") != STATE_FORMAT:
            raise ValueError(f"not a recommender state (format {config.get('format')!r})")
        vocab = list(config["type_vocab"])
        n = config["net"]
        if (
            n["n_item_features"] != n_item_features(len(vocab))
            or n["n_learner_features"] != N_LEARNER_FEATURES
            or n["n_pair_features"] != N_PAIR_FEATURES
        ):
            raise ValueError("recommender state was built by an incompatible feature set")
        net = ScoringNet(**n)
        net.load_state_dict(
            {k[len("net.") :]: v for k, v in tensors.items() if k.startswith("net.")}
        )
        runs = []
        for r, rc in enumerate(config["runs"]):
            p = f"runs.{r}."

            def a(name: str, p: str = p) -> np.ndarray:
                return tensors[p + name].numpy().copy()

            runs.append(
                CourseRun(
                    course_id=rc["course_id"],
                    item_ids=a("item_ids"),
                    item_type=a("item_type"),
                    week_from=a("week_from"),
                    emb_rows=a("emb_rows"),
                    learner_ids=a("learner_ids"),
                    as_of=int(rc["as_of"]),
                    timeline=ItemTimeline(
                        day0=int(rc["day0"]),
                        cum_rows=a("cum_rows"),
                        cum_first=a("cum_first"),
                        cum_clicks=a("cum_clicks"),
                        cum_first_daysum=a("cum_first_daysum"),
                        cum_learners=a("cum_learners"),
                        first_active=a("first_active"),
                    ),
                    pairs=PairTable(
                        a("pairs.learner"),
                        a("pairs.item"),
                        a("pairs.weight"),
                        a("pairs.clicks"),
                        a("pairs.first_day"),
                        a("pairs.last_day"),
                        int(rc["pairs_day"]),
                    ),
                    covisit=Neighbours(a("covisit.idx"), a("covisit.val")),
                    follows=Neighbours(a("follows.idx"), a("follows.val")),
                )
            )
        return cls(net, runs, vocab, TrainConfig.from_dict(config["train"]), config.get("stats"))
