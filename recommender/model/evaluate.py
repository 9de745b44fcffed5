"""Offline evaluation of the recommender against peers, on a temporal split.

Protocol (per course run / OULAD module-presentation):

* train on the clicks dated before `split_day`;
* the test set of a learner is the items they open for the first time on or
  after `split_day` (items opened before it are not test items);
* test learners are those with at least one click before the split and a
  non-empty test set (a learner unseen before the split has nothing to
  personalise on and is not counted);
* every model ranks all items of the run that the learner has not opened
  before the split (the catalogue = the run's items plus any item clicked
  before the split); ties keep catalogue order;
* Recall@k (hits / min(k, |test|)), NDCG@k (binary relevance) averaged over
  test learners, and catalogue coverage (share of all runs' items that appear
  in at least one top-k list).

Peers: popularity (distinct learners before the split), recent popularity
(clicks in the last 14 days before the split), item-kNN (cosine over who opened
what), and ALS (64 factors) / BPR from the `implicit` package, which is a
benchmark-only dependency imported lazily: without it those peers are reported
as unavailable. Tuned peers (`tuned_peers.py`: time-decayed popularity,
transitions, calendar) choose their settings on inner validation (cuts at
split - 14 and split - 28, history runs at the split day), never the test days.

History (`history=`): earlier course runs known in full. The product (the ranker since
#23) and the tuned peers train on them too; the id-based peers cannot use them (item ids
are not shared between presentations). `timeline_scorer("mlp_ranker")` still scores the
ranker directly on `timeline.Snapshot`s (the leakage tests compare it with the product).
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from eduplatform.ml.data import LearningData
from eduplatform.ml.ranking import hit_matrix_metrics
from recommender.model.timeline import (
    Params,
    Run,
    Snapshot,
    inner_cases,
    runs_from_data,
    top_k,
)
from recommender.model.tuned_peers import TUNED_PEERS

if TYPE_CHECKING:
    from recommender.model.predictor import Recommender

CourseId = Any

PRODUCT = "recommender"
PEERS = (
    "decayed_popularity",
    "transitions",
    "calendar",
    "popularity",
    "recent_popularity",
    "item_knn",
    "als",
    "bpr",
)
# Evaluated-only candidates: scored and reported, never the "best peer". `mlp_ranker`
# became the product (#23): the name is kept as an alias reporting the product's figures.
CANDIDATES = ("mlp_ranker",)
ALIASES = {"mlp_ranker": PRODUCT}
RECENT_DAYS = 14
ALS_FACTORS = 64


@dataclass
class RunSplit:
    """One course run cut at the split day."""

    course_id: CourseId
    item_ids: np.ndarray  # catalogue, sorted
    train_learners: np.ndarray  # learners with a click before the split, sorted
    train: sp.csr_matrix  # train_learners x items, summed clicks before the split
    recent: np.ndarray  # (n_items,) clicks in [split - RECENT_DAYS, split)
    test_rows: np.ndarray  # rows of train_learners that are test learners
    test: sp.csr_matrix  # test learners x items, 1 = first opened on/after the split

    @property
    def learner_ids(self) -> np.ndarray:
        ids: np.ndarray = self.train_learners[self.test_rows]
        return ids

    @property
    def visited(self) -> np.ndarray:
        mask: np.ndarray = (self.train[self.test_rows] > 0).toarray()
        return mask


def train_view(data: LearningData, split_day: int) -> LearningData:
    """The data as known at the split: click frames cut before it, the rest as is."""
    return LearningData(
        courses=data.courses,
        enrolments=data.enrolments,
        activity=data.activity[data.activity["day"] < split_day].reset_index(drop=True),
        item_activity=data.item_activity[data.item_activity["day"] < split_day].reset_index(
            drop=True
        ),
        items=data.items,
        assessments=data.assessments,
        submissions=data.submissions,
    )


def split_runs(data: LearningData, split_day: int) -> list[RunSplit]:
    """The protocol's train / test sets of every course run that has test learners."""
    out = []
    items_by = dict(tuple(data.items.groupby("course_id", sort=False)))
    for cid, rows in data.item_activity.groupby("course_id", sort=True):
        before = rows[rows["day"] < split_day]
        after = rows[rows["day"] >= split_day]
        catalogue = np.unique(
            np.concatenate(
                [
                    items_by[cid]["item_id"].to_numpy() if cid in items_by else np.zeros(0),
                    before["item_id"].to_numpy(),
                ]
            ).astype(np.int64)
        )
        learners = np.unique(before["learner_id"].to_numpy())
        if len(learners) == 0 or len(catalogue) == 0:
            continue
        shape = (len(learners), len(catalogue))
        u = np.searchsorted(learners, before["learner_id"].to_numpy())
        i = np.searchsorted(catalogue, before["item_id"].to_numpy())
        train = sp.csr_matrix((before["clicks"].to_numpy(np.float64), (u, i)), shape=shape)
        train.sum_duplicates()
        after = after[
            np.isin(after["learner_id"].to_numpy(), learners)
            & np.isin(after["item_id"].to_numpy(), catalogue)
        ]
        au = np.searchsorted(learners, after["learner_id"].to_numpy())
        ai = np.searchsorted(catalogue, after["item_id"].to_numpy())
        test = sp.csr_matrix((np.ones(len(au)), (au, ai)), shape=shape)
        test.sum_duplicates()
        test.data[:] = 1.0
        test = test - test.multiply(train > 0)
        test.eliminate_zeros()
        n_test = np.asarray(test.sum(axis=1)).ravel()
        test_rows = np.flatnonzero(n_test > 0)
        if len(test_rows) == 0:
            continue
        recent_rows = before[before["day"] >= split_day - RECENT_DAYS]
        recent = np.bincount(
            np.searchsorted(catalogue, recent_rows["item_id"].to_numpy()),
            weights=recent_rows["clicks"].to_numpy(np.float64),
            minlength=len(catalogue),
        )
        out.append(
            RunSplit(
                course_id=cid,
                item_ids=catalogue,
                train_learners=learners,
                train=train.tocsr(),
                recent=recent,
                test_rows=test_rows,
                test=test[test_rows].tocsr(),
            )
        )
    return out


def _metrics(top: np.ndarray, test: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    dense = test.toarray() > 0
    valid = top >= 0
    hits = np.take_along_axis(dense, np.where(valid, top, 0), axis=1) & valid
    return hit_matrix_metrics(hits, dense.sum(axis=1), k)


# ---------------------------------------------------------------- peers

Scorer = Callable[[RunSplit], np.ndarray]


def _popularity(s: RunSplit) -> np.ndarray:
    users = np.asarray((s.train > 0).sum(axis=0), dtype=np.float64).ravel()
    return np.broadcast_to(users, (len(s.test_rows), len(users)))


def _recent(s: RunSplit) -> np.ndarray:
    return np.broadcast_to(s.recent, (len(s.test_rows), len(s.recent)))


def _item_knn(s: RunSplit) -> np.ndarray:
    b = (s.train > 0).astype(np.float64).tocsc()
    norms = np.sqrt(np.asarray(b.sum(axis=0)).ravel())
    norms[norms == 0] = 1.0
    bn = b.multiply(1.0 / norms[None, :]).tocsc()
    sim = (bn.T @ bn).toarray()
    np.fill_diagonal(sim, 0.0)
    return np.asarray(b.tocsr()[s.test_rows] @ sim)


@contextlib.contextmanager
def _quiet_blas() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _implicit_scorer(kind: str, seed: int) -> Scorer:
    import implicit  # noqa: F401  (raises ImportError when the peer is unavailable)
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    def score(s: RunSplit) -> np.ndarray:
        with _quiet_blas():
            if kind == "als":
                model = AlternatingLeastSquares(factors=ALS_FACTORS, random_state=seed)
            else:
                model = BayesianPersonalizedRanking(random_state=seed, num_threads=1)
            model.fit(s.train.astype(np.float32).tocsr(), show_progress=False)
        scores: np.ndarray = (
            np.asarray(model.user_factors)[s.test_rows] @ np.asarray(model.item_factors).T
        )
        return scores

    return score


def peer_scorer(name: str, seed: int = 0) -> Scorer:
    if name == "popularity":
        return _popularity
    if name == "recent_popularity":
        return _recent
    if name == "item_knn":
        return _item_knn
    if name in ("als", "bpr"):
        return _implicit_scorer(name, seed)
    raise ValueError(f"unknown peer {name!r}")


# ---------------------------------------------------------------- evaluation


def evaluate_scorer(
    splits: list[RunSplit], scorer: Scorer, k: int, *, per_learner: bool = False
) -> dict[str, Any]:
    """Recall@k, NDCG@k (means over test learners), catalogue coverage; `per_learner`
    also returns each learner's NDCG@k (an array: paired intervals, not for JSON)."""
    recalls, ndcgs, covered = [], [], 0
    catalogue = 0
    for s in splits:
        scores = np.asarray(scorer(s))
        top = top_k(scores, s.visited, k)
        r, n = _metrics(top, s.test, k)
        recalls.append(r)
        ndcgs.append(n)
        covered += len(np.unique(top[top >= 0]))
        catalogue += len(s.item_ids)
    recall = np.concatenate(recalls) if recalls else np.zeros(0)
    ndcg = np.concatenate(ndcgs) if ndcgs else np.zeros(0)
    return {
        "recall": float(recall.mean()) if len(recall) else 0.0,
        "ndcg": float(ndcg.mean()) if len(ndcg) else 0.0,
        "coverage": covered / catalogue if catalogue else 0.0,
        "learners": len(recall),
        **({"per_learner_ndcg": ndcg} if per_learner else {}),
    }


def combine(parts: list[LearningData]) -> LearningData:
    """One LearningData of several (course ids must not repeat)."""
    if len(parts) == 1:
        return parts[0]
    frames = {
        name: pd.concat([getattr(p, name) for p in parts], ignore_index=True)
        for name in LearningData.frame_names()
    }
    return LearningData(**frames)


def history_overlap(data: LearningData, history: LearningData) -> list[CourseId]:
    """Course runs present in both (an error for the command: never train on test runs)."""
    return sorted(set(data.courses["course_id"]) & set(history.courses["course_id"]), key=str)


def product_scorer(
    data: LearningData,
    split_day: int,
    config: Params | None = None,
    log: Callable[[str], None] | None = None,
    history: LearningData | None = None,
) -> tuple[Scorer, Recommender]:
    """Fit the product recommender on the clicks before the split (and the history runs in
    full, each as of its last day + 1); return its scorer."""
    from recommender.model.predictor import Recommender

    view = train_view(data, split_day)
    as_of: int | dict[Any, int] = split_day
    finished: list[Any] = []
    if history is not None and not history.item_activity.empty:
        as_of = {cid: split_day for cid in data.courses["course_id"]}
        last = history.item_activity.groupby("course_id")["day"].max()
        as_of.update({cid: int(day) + 1 for cid, day in last.items()})
        finished = list(last.index)
        view = combine([view, history])
    rec = Recommender.fit(view, as_of, config, log=log, finished=finished)

    def score(s: RunSplit) -> np.ndarray:
        scores, _ = rec.score_learners(s.course_id, s.learner_ids, split_day)
        ids = rec.item_ids(s.course_id)
        cols = np.searchsorted(ids, s.item_ids)
        return scores[:, cols]

    return score, rec


class _TimelineModel:
    """Adapts a `Snapshot` scorer (tuned peers, mlp_ranker) to the protocol's `RunSplit`."""

    def __init__(self, runs: list[Run], split_day: int, scores: Callable[..., np.ndarray]):
        self.by_id = {r.course_id: r for r in runs}
        self.split_day = split_day
        self.scores = scores

    def __call__(self, s: RunSplit) -> np.ndarray:
        run = self.by_id[s.course_id]
        assert np.array_equal(run.item_ids, s.item_ids), "catalogues differ"
        rows = np.searchsorted(run.learner_ids, s.learner_ids)
        return self.scores(Snapshot(run, self.split_day), rows)


def timeline_scorer(
    name: str,
    data: LearningData,
    split_day: int,
    history: LearningData | None = None,
    seed: int = 0,
) -> tuple[Scorer, dict[str, Any]]:
    """A tuned peer or the mlp_ranker, fitted on the days before the split (+ history)."""
    from recommender.model.timeline import Params

    train_part = runs_from_data(train_view(data, split_day), before_day=split_day)
    hist = runs_from_data(history) if history is not None else []
    params = Params(seed=seed)
    if name == "mlp_ranker":
        import torch

        from recommender.model.ranker import MLPRanker

        torch.set_num_threads(1)
        ranker = MLPRanker(params).fit(hist, train_part, split_day)
        return _TimelineModel(train_part, split_day, ranker.scores), {
            "chosen": ranker.chosen,
            **ranker.stats,
        }
    peer = TUNED_PEERS[name](params).fit(inner_cases(train_part, hist, split_day))
    best = max(score for _, score in peer.tuning)
    return _TimelineModel(train_part, split_day, peer.scores), {
        "chosen": peer.chosen,
        "inner_ndcg": round(best, 4),
    }


def evaluate(
    data: LearningData,
    split_day: int = 100,
    k: int = 10,
    peers: tuple[str, ...] = PEERS,
    with_product: bool = True,
    config: Params | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    history: LearningData | None = None,
    candidates: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Run the protocol; returns {"models": {name: {...}}, ...} (the --json payload).

    Long because it is the protocol's one loop: every model is fitted and scored the same way.
    """
    started = time.perf_counter()
    splits = split_runs(data, split_day)
    result: dict[str, Any] = {
        "split_day": split_day,
        "k": k,
        "course_runs": len(splits),
        "test_learners": int(sum(len(s.test_rows) for s in splits)),
        "catalogue_items": int(sum(len(s.item_ids) for s in splits)),
        "history_runs": 0 if history is None else int(history.courses["course_id"].nunique()),
        "models": {},
    }
    names = ([PRODUCT] if with_product else []) + list(candidates) + list(peers)
    if result["test_learners"] == 0:
        names = []  # nothing to score (e.g. a split after the runs' end)
    for name in names:
        t0, c0 = time.perf_counter(), time.process_time()
        extra: dict[str, Any]
        try:
            if name in ALIASES and ALIASES[name] in result["models"]:
                result["models"][name] = {**result["models"][ALIASES[name]], "alias_of": PRODUCT}
                continue
            if name == PRODUCT or name in ALIASES:
                cfg = config or Params(seed=seed)
                scorer, rec = product_scorer(data, split_day, cfg, log=log, history=history)
                extra = {
                    k: rec.stats.get(k)
                    for k in ("fit_seconds", "fit_cpu_seconds", "epochs", "chosen")
                    if k in rec.stats
                }
            elif name in TUNED_PEERS:
                scorer, extra = timeline_scorer(name, data, split_day, history, seed)
            else:
                scorer, extra = peer_scorer(name, seed), {}
        except ImportError as exc:
            result["models"][name] = {"available": False, "note": f"unavailable ({exc})"}
            continue
        metrics = evaluate_scorer(splits, scorer, k)
        metrics.update(extra)
        metrics["available"] = True
        metrics["seconds"] = round(time.perf_counter() - t0, 2)
        metrics["cpu_seconds"] = round(time.process_time() - c0, 2)
        result["models"][name] = metrics
        if log:
            log(f"{name}: NDCG@{k} {metrics['ndcg']:.4f} ({metrics['seconds']}s)")
    result["seconds"] = round(time.perf_counter() - started, 2)
    models = result["models"]
    available = {
        n: m
        for n, m in models.items()
        if m.get("available") and n != PRODUCT and n not in CANDIDATES
    }
    if available:
        best = max(available, key=lambda n: available[n]["ndcg"])
        result["best_peer"] = best
        for name in (PRODUCT, *CANDIDATES):
            if models.get(name, {}).get("available"):
                ratio = models[name]["ndcg"] / max(available[best]["ndcg"], 1e-12)
                key = "ndcg_ratio_to_best_peer" if name == PRODUCT else f"{name}_ndcg_ratio"
                result[key] = ratio
    return result


def format_table(result: dict[str, Any]) -> str:
    k = result["k"]
    lines = [
        f"split day {result['split_day']}: {result['course_runs']} course runs, "
        f"{result['test_learners']} test learners, {result['catalogue_items']} items",
        f"{'model':<20} {'Recall@' + str(k):>10} {'NDCG@' + str(k):>10} "
        f"{'coverage':>10} {'seconds':>9}",
    ]
    for name, m in result["models"].items():
        if not m.get("available"):
            lines.append(f"{name:<20} {m.get('note', 'unavailable')}")
            continue
        lines.append(
            f"{name:<20} {m['recall']:>10.4f} {m['ndcg']:>10.4f} "
            f"{m['coverage']:>10.4f} {m['seconds']:>9.1f}"
        )
    if "best_peer" in result:
        for name in (PRODUCT, *CANDIDATES):
            key = "ndcg_ratio_to_best_peer" if name == PRODUCT else f"{name}_ndcg_ratio"
            if key in result:
                lines.append(
                    f"{name} / best peer ({result['best_peer']}) NDCG@{k}: {result[key]:.3f}x"
                )
    return "\n".join(lines)


def frame_summary(result: dict[str, Any]) -> pd.DataFrame:
    """The table as a DataFrame (one row per model)."""
    rows = [{"model": n, **m} for n, m in result["models"].items()]
    return pd.DataFrame(rows)
