"""The serving object: `Recommender.fit(data, as_of_day)`, `recommend`, `similar_items`,
`score_learners`, `to_state` / `from_state` (tensors + JSON config for
eduplatform.ml.artifacts), backed by the ranker (`ranker.MLPRanker`, served as the split
`RankerScoringNet`) over the compact run state of `run_state`.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeAlias, cast

import numpy as np
import pandas as pd
import torch

from eduplatform.ml.data import LearningData
from recommender.model.parts import ItemPart, Recommendation
from recommender.model.ranker import MLPRanker, block_parts, item_features
from recommender.model.ranker_net import RankerScoringNet, Standardiser
from recommender.model.reasons import explain, similar
from recommender.model.run_state import RunDerived, RunState, RunView
from recommender.model.timeline import TYPE_CODE, LearnerBlock, Params, runs_from_data

STATE_FORMAT = "eduplatform.recommender/2"
_CACHE_SIZE = 64
PAIR_BUDGET = 256 * 1024  # (learner, item) pairs per network call in batch scoring
CourseId: TypeAlias = Any
# A learner's own click history: a DataFrame or rows of (item_id, day, clicks).
History: TypeAlias = pd.DataFrame | Iterable[tuple[int, int, float]]


def params_to_dict(p: Params) -> dict[str, Any]:
    return dataclasses.asdict(p)


def params_from_dict(d: dict[str, Any]) -> Params:
    def tup(v: Any) -> Any:
        return tuple(tup(x) for x in v) if isinstance(v, list) else v

    known = {f.name for f in dataclasses.fields(Params)}
    return Params(**{k: tup(v) for k, v in d.items() if k in known})


class Recommender:
    """Ranks the items of a course run for a learner at a day of the run."""

    def __init__(
        self,
        net: RankerScoringNet,
        scaler: Standardiser,
        states: Sequence[RunState],
        params: Params,
        stats: dict[str, Any] | None = None,
    ) -> None:
        self.net = net.eval()
        self.scaler = scaler
        self.runs: dict[CourseId, RunState] = {s.course_id: s for s in states}
        self.config = params
        self.stats = stats or {}
        self._cache: OrderedDict[tuple[CourseId, int], ItemPart] = OrderedDict()
        self._derived: dict[CourseId, RunDerived] = {}
        self._item_run: dict[int, CourseId] | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def fit(
        cls,
        data: LearningData,
        as_of_day: int | dict[Any, int],
        config: Params | None = None,
        course_ids: Sequence[CourseId] | None = None,
        log: Callable[[str], None] | None = None,
        warm_start: Recommender | None = None,
        finished: Collection[CourseId] = (),
        epochs: int | None = None,
    ) -> Recommender:
        """Train on the clicks of `data` dated before `as_of_day` (one int, or per run).

        Runs in `finished` are known in full (earlier presentations, runs that ended): the
        ranker replays them every 14 days with labels to their end. The others are cut at
        their as-of day and replayed before it. `epochs` skips the inner choice of the
        epoch count; `warm_start` (a previous Recommender) starts from its network.
        """
        started, cpu_started = time.perf_counter(), time.process_time()
        p = config or Params()
        ia = data.item_activity
        if course_ids is not None:
            ia = ia[ia["course_id"].isin(list(course_ids))]
        if isinstance(as_of_day, dict):
            cut = ia["course_id"].map(as_of_day).astype(float).to_numpy()
        else:
            cut = np.full(len(ia), float(as_of_day))
        ia = ia[ia["day"].to_numpy() < cut].reset_index(drop=True)
        runs = runs_from_data(dataclasses.replace(data, item_activity=ia))

        def as_of(cid: CourseId) -> int:
            return int(as_of_day[cid] if isinstance(as_of_day, dict) else as_of_day)

        done = set(finished)
        history = [r for r in runs if r.course_id in done]
        current = [
            dataclasses.replace(r, end_day=as_of(r.course_id))
            for r in runs
            if r.course_id not in done
        ]
        init = None
        if warm_start is not None and warm_start.net.shape() == RankerScoringNet().shape():
            init = warm_start.net.to_ranker(warm_start.scaler)
        previous = torch.get_num_threads()
        torch.set_num_threads(1)  # deterministic, and the box's other jobs keep their cores
        try:
            ranker = MLPRanker(p).fit(history, current, epochs=epochs, init=init)
        finally:
            torch.set_num_threads(previous)
        assert ranker.net is not None
        net, scaler = RankerScoringNet.from_ranker(ranker.net)
        states = [RunState.build(r, as_of(r.course_id), p.half_lives) for r in runs]
        stats = {
            **ranker.stats,
            "chosen": ranker.chosen,
            "fit_seconds": round(time.perf_counter() - started, 2),
            "fit_cpu_seconds": round(time.process_time() - cpu_started, 2),
        }
        if log:
            log(f"recommender: fitted in {stats['fit_seconds']}s, epochs {ranker.chosen}")
        return cls(net, scaler, states, p, stats)

    def use_network(self, net: torch.nn.Module) -> None:
        """Serve `net` (a compressed variant of the same shape) from now on; the cached
        item blocks were computed by the previous network, so they go."""
        self.net = cast(RankerScoringNet, net.eval())
        self._cache.clear()

    def course_ids(self) -> list[CourseId]:
        return list(self.runs)

    def _run(self, course: CourseId) -> RunState:
        try:
            return self.runs[course]
        except KeyError:
            raise KeyError(f"unknown course run {course!r}") from None

    def derived(self, course: CourseId) -> RunDerived:
        d = self._derived.get(course)
        if d is None:
            d = self._derived[course] = RunDerived(self._run(course))
        return d

    def item_ids(self, course: CourseId) -> np.ndarray:
        return self._run(course).item_ids.copy()

    def add_items(
        self,
        course: CourseId,
        item_ids: Iterable[int],
        activity_types: Iterable[str],
        week_from: Iterable[float | None] | None = None,
    ) -> None:
        """Add items created after training: scored from type and release week."""
        state = self._run(course)
        ids = np.asarray(list(item_ids), dtype=np.int64)
        types = list(activity_types)
        weeks = list(week_from) if week_from is not None else [None] * len(ids)
        if not (len(ids) == len(types) == len(weeks)):
            raise ValueError("item_ids, activity_types and week_from differ in length")
        known = set(state.item_ids.tolist())
        new = [k for k, i in enumerate(ids) if int(i) not in known]
        if not new:
            return
        # The catalogue stays sorted only if the new ids are larger; keep its order
        # by appending and remembering nothing positional elsewhere.
        state.add_items(
            ids[new],
            np.array([TYPE_CODE.get(str(types[k]), 0) for k in new]),
            np.array([np.nan if (w := weeks[k]) is None else float(w) for k in new]),
        )
        self._cache.clear()
        self._derived.pop(course, None)
        self._item_run = None

    # ------------------------------------------------------------------ scoring

    def _item_part(self, course: CourseId, now_day: int) -> ItemPart:
        state = self._run(course)
        key = (course, max(int(now_day), state.as_of))
        part = self._cache.get(key)
        if part is not None:
            self._cache.move_to_end(key)
            return part
        view = RunView(state, self.derived(course), key[1])
        x = self.scaler.item(torch.from_numpy(item_features(view, self.config)))
        with torch.inference_mode():
            item_h = self.net.item_hidden(x)
        used = view.visits_window(7)
        part = ItemPart(view, x, item_h, used, pd.Series(used).rank(pct=True).to_numpy())
        self._cache[key] = part
        if len(self._cache) > _CACHE_SIZE:
            self._cache.popitem(last=False)
        return part

    def _inputs(self, part: ItemPart, lb: LearnerBlock) -> tuple[torch.Tensor, torch.Tensor]:
        lf, px = block_parts(part.view, lb, self.config)
        return self.scaler.learner(torch.from_numpy(lf)), self.scaler.pair(torch.from_numpy(px))

    def _score(self, part: ItemPart, lb: LearnerBlock) -> torch.Tensor:
        lx, px = self._inputs(part, lb)
        with torch.inference_mode():
            out: torch.Tensor = self.net(part.item_h, lx, px)
        return out

    def _block(
        self, part: ItemPart, course: CourseId, learner: int | None, history: History | None
    ) -> LearnerBlock:
        if history is not None:
            frame = (
                history
                if isinstance(history, pd.DataFrame)
                else pd.DataFrame(list(history), columns=["item_id", "day", "clicks"])
            )
            if frame.empty:
                return part.view.cold_block()
            return part.view.history_block(frame)[0]
        row = self.derived(course).learner_index.get(int(learner)) if learner is not None else None
        if row is None:
            return part.view.cold_block()
        return part.view.learners(np.array([row]))

    def model_inputs(
        self, course: CourseId, learner_rows: np.ndarray, now_day: int | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The network's standardised inputs for learner rows of a run at a day: (item_x,
        learner_x, pair_x, visited); `net.item_hidden(item_x)` gives the first argument
        of `net(...)`. For compression and distillation, which swap networks."""
        state = self._run(course)
        part = self._item_part(course, state.as_of if now_day is None else int(now_day))
        lb = part.view.learners(np.asarray(learner_rows, dtype=np.int64))
        lx, px = self._inputs(part, lb)
        return part.item_x, lx, px, torch.from_numpy(lb.seen)

    def score_learners(
        self,
        course: CourseId,
        learner_ids: Iterable[int],
        now_day: int | None = None,
        batch_size: int = 256,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Scores (learners x run items, item order = `item_ids(course)`) and the visited
        mask, from the stored history (clicks before the as-of day); unknown learners get
        the cold-start scores.

        At most `batch_size` learners and `PAIR_BUDGET` (learner, item) pairs per network
        call: the first hidden layer holds 64 floats per pair, so 256 learners of a
        50,000-item run would take 3.3 GB at once (a 50k compression report was killed
        at 22 GB); a run of up to 1,024 items keeps whole batches of 256."""
        state = self._run(course)
        batch_size = max(1, min(batch_size, PAIR_BUDGET // max(state.n_items, 1)))
        part = self._item_part(course, state.as_of if now_day is None else int(now_day))
        index = self.derived(course).learner_index
        rows = np.array([index.get(int(u), -1) for u in learner_ids], dtype=np.int64)
        out = np.zeros((len(rows), state.n_items), dtype=np.float32)
        visited = np.zeros((len(rows), state.n_items), dtype=bool)
        known = np.flatnonzero(rows >= 0)
        for start in range(0, len(known), batch_size):
            sel = known[start : start + batch_size]
            lb = part.view.learners(rows[sel])
            out[sel] = self._score(part, lb).numpy()
            visited[sel] = lb.seen
        cold = np.flatnonzero(rows < 0)
        if len(cold):
            out[cold] = self._score(part, self._block(part, course, None, None)).numpy()[0]
        return out, visited

    def recommend(
        self,
        learner: int | None,
        course: CourseId,
        k: int = 10,
        now_day: int | None = None,
        history: History | None = None,
        include_visited: bool = False,
    ) -> list[Recommendation]:
        """Top-k items of `course` for `learner` at `now_day` (default: the run's as-of day;
        earlier days are served as of it).

        The learner's history is the stored one (clicks before the as-of day), or
        `history` (DataFrame or iterable of (item_id, day, clicks)) when given.
        An unknown learner without history gets the cohort's current favourites.
        Visited items are left out unless `include_visited`.
        """
        state = self._run(course)
        part = self._item_part(course, state.as_of if now_day is None else int(now_day))
        lb = self._block(part, course, learner, history)
        s = self._score(part, lb)[0]
        if not include_visited:
            s = s.masked_fill(torch.from_numpy(lb.seen[0]), float("-inf"))
        k = min(k, int(torch.isfinite(s).sum()))
        if k <= 0:
            return []
        top = torch.topk(s, k).indices.numpy()
        return explain(part, lb, top, s.numpy(), self.config)

    def similar_items(
        self, item_id: int, k: int = 10, course: CourseId | None = None
    ) -> list[Recommendation]:
        """Items often opened by the same learners (co-visit), then follow-ups, then same type."""
        cid, i = self._locate(item_id, course)
        return similar(self.derived(cid), i, k, self.config)

    def _locate(self, item_id: int, course: CourseId | None) -> tuple[CourseId, int]:
        if course is not None:
            index = self.derived(course).item_index
            if int(item_id) not in index:
                raise KeyError(f"unknown item {item_id!r} in course run {course!r}")
            return course, index[int(item_id)]
        if self._item_run is None:
            self._item_run = {}
            for cid, state in self.runs.items():
                for iid in state.item_ids:
                    self._item_run.setdefault(int(iid), cid)
        cid = self._item_run.get(int(item_id))
        if cid is None:
            raise KeyError(f"unknown item {item_id!r}")
        return cid, self.derived(cid).item_index[int(item_id)]

    # ------------------------------------------------------------------ state

    def to_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors: dict[str, torch.Tensor] = {
            f"net.{k}": v.detach().clone() for k, v in self.net.state_dict().items()
        }
        tensors.update(self.scaler.state())
        runs_cfg = []
        for r, state in enumerate(self.runs.values()):
            t, c = state.to_tensors(f"runs.{r}.")
            tensors.update(t)
            runs_cfg.append(c)
        config = {
            "format": STATE_FORMAT,
            "params": params_to_dict(self.config),
            "runs": runs_cfg,
            "net": RankerScoringNet().shape(),
            "stats": self.stats,
        }
        return tensors, config

    @classmethod
    def from_state(cls, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> Recommender:
        if config.get("format") != STATE_FORMAT:
            raise ValueError(f"not a recommender state (format {config.get('format')!r})")
        if config["net"] != RankerScoringNet().shape():
            raise ValueError("recommender state was built by an incompatible feature set")
        net = RankerScoringNet(**config["net"])
        net.load_state_dict(
            {k[len("net.") :]: v for k, v in tensors.items() if k.startswith("net.")}
        )
        scaler = Standardiser(tensors["scale.mean"], tensors["scale.std"])
        states = [
            RunState.from_tensors(tensors, f"runs.{r}.", rc) for r, rc in enumerate(config["runs"])
        ]
        return cls(net, scaler, states, params_from_dict(config["params"]), config.get("stats"))
