"""Compression of the served ranker's network (`Recommender.net`, a `RankerScoringNet`:
plain `nn.Linear` layers, the first split into item / learner / pair blocks).

    result = compress_recommender(rec, evaluate=ndcg_evaluator(rec, splits, split_day),
                                  finetune=distill_finetune(rec))
    tensors, config = recommender_serving_state(rec, result.module)
    rec = load_recommender(tensors, config)

What is timed ("scoring"): ``net(item_h, learner_x, pair_x)`` for 1 and for 256 learners
of a course run over all its items, the serving call of `Recommender.recommend` /
`score_learners`. The item block ``item_h = net.item_hidden(item_x)`` is cached per run
and day in serving, so it is computed outside the timed region (by each variant:
structured pruning changes its width). Feature building is the same for every variant
and not timed.

Hidden-unit groups (`scoring_groups`): the first hidden layer is the sum of item_in,
learner_in and pair_in, consumed by `hidden`; the second is `hidden` -> `out`.

Quality: `ndcg_evaluator` (NDCG@10 on the temporal split of recommender.model.evaluate,
the product metric's protocol), or `fidelity_evaluator` (NDCG@10 of a variant's ranking
against the fp32 network's top 10, when there is no held-out data).

Fine-tuning: `distill_finetune` (match the fp32 network's softmax over each learner's
unvisited items, KL divergence, at the runs' as-of day; needs no training rows).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import numpy as np
import torch
from torch import nn

from eduplatform.ml.compress.methods import Finetune, UnitGroup
from eduplatform.ml.compress.pipeline import (
    CompressionResult,
    CompressionSettings,
    SelectionPolicy,
    compress_model,
)
from eduplatform.ml.compress.serialize import load_variant, variant_state
from eduplatform.ml.data import LearningData
from eduplatform.ml.ranking import dcg_discounts
from recommender.model.predictor import PAIR_BUDGET, CourseId, Recommender
from recommender.model.ranker_net import RankerScoringNet

if TYPE_CHECKING:
    from recommender.model.evaluate import RunSplit

T = TypeVar("T")
StateFn = Callable[[nn.Module], tuple[dict[str, torch.Tensor], dict[str, Any]]]
VARIANT_PREFIX = "variant."


def scoring_groups(net: RankerScoringNet) -> list[UnitGroup]:
    return [
        UnitGroup(
            "hidden",
            (("item_in", "out"), ("learner_in", "out"), ("pair_in", "out"), ("hidden", "in")),
        ),
        UnitGroup("hidden2", (("hidden", "out"), ("out", "in"))),
    ]


def net_shape(rec: Recommender) -> dict[str, Any]:
    """RankerScoringNet(**shape) of the fp32 architecture (as in `Recommender.to_state`)."""
    return rec.net.shape()


def _as_scoring(module: nn.Module) -> RankerScoringNet:
    """A (compressed) network typed as what it is: compression deep-copies the
    RankerScoringNet and swaps its layers, so the class and its methods are kept."""
    return cast(RankerScoringNet, module)


def scoring_base_builder(shape: dict[str, Any]) -> Callable[[], nn.Module]:
    return lambda: RankerScoringNet(**shape)


def _largest_run(rec: Recommender) -> CourseId:
    return max(rec.runs, key=lambda c: rec.runs[c].n_items)


def scoring_inputs(
    rec: Recommender,
    batch: int,
    course: CourseId | None = None,
    seed: int = 0,
    now_day: int | None = None,
) -> tuple[torch.Tensor, ...]:
    """Raw scoring inputs (item_x, learner_x, pair_x) of `batch` learners of `course`
    (default: the run with most items), drawn with replacement when it has fewer."""
    course = _largest_run(rec) if course is None else course
    n = rec.runs[course].n_learners
    rows = np.sort(np.random.default_rng(seed).choice(n, size=batch, replace=n < batch))
    return rec.model_inputs(course, rows, now_day)[:3]


def prepare_scoring(module: nn.Module, raw: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """The serving call's inputs: the item block computed by this module."""
    item_x, learner_x, pair_x = raw
    return (_as_scoring(module).item_hidden(item_x), learner_x, pair_x)


def chunked_scoring(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """The network over a batch of learners as batch scoring runs it: at most
    `PAIR_BUDGET` (learner, item) pairs per call (timed so in the compression report)."""
    item_h, learner_x, pair_x = inputs
    step = max(1, PAIR_BUDGET // max(int(item_h.shape[0]), 1))
    if learner_x.shape[0] <= step:
        return cast(torch.Tensor, module(item_h, learner_x, pair_x))
    return torch.cat(
        [
            module(item_h, learner_x[s : s + step], pair_x[s : s + step])
            for s in range(0, int(learner_x.shape[0]), step)
        ]
    )


def _with_net(rec: Recommender, module: nn.Module, fn: Callable[[], T]) -> T:
    saved = rec.net
    rec.use_network(module)
    try:
        return fn()
    finally:
        rec.use_network(saved)


def ndcg_evaluator(
    rec: Recommender, splits: list[RunSplit], split_day: int, k: int = 10
) -> Callable[[nn.Module], np.ndarray]:
    """Each test learner's NDCG@k with a given network on the held-out first visits (the
    policy takes the mean, and a 95% interval of the loss from the paired values)."""
    from recommender.model.evaluate import evaluate_scorer

    def scorer(s: RunSplit) -> np.ndarray:
        scores, _ = rec.score_learners(s.course_id, s.learner_ids, split_day)
        cols = np.searchsorted(rec.item_ids(s.course_id), s.item_ids)
        return scores[:, cols]

    def evaluate(module: nn.Module) -> np.ndarray:
        out = _with_net(rec, module, lambda: evaluate_scorer(splits, scorer, k, per_learner=True))
        return np.asarray(out["per_learner_ndcg"], dtype=np.float64)

    return evaluate


def _topk_unvisited(scores: torch.Tensor, visited: torch.Tensor, k: int) -> torch.Tensor:
    return torch.topk(scores.masked_fill(visited, float("-inf")), k, dim=1).indices


def fidelity_evaluator(
    rec: Recommender,
    course: CourseId | None = None,
    learners: int = 200,
    k: int = 10,
    seed: int = 1,
) -> Callable[[nn.Module], float]:
    """NDCG@k of a network's top-k against the fp32 network's top-k (fp32 = 1.0)."""
    course = _largest_run(rec) if course is None else course
    run = rec.runs[course]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(run.n_learners, size=min(learners, run.n_learners), replace=False))
    item_x, lx, px, visited = rec.model_inputs(course, rows)
    k = min(k, run.n_items)
    with torch.inference_mode():
        ref = rec.net(rec.net.item_hidden(item_x), lx, px)
    ref_top = _topk_unvisited(ref, visited, k)
    relevant = torch.zeros_like(visited)
    relevant.scatter_(1, ref_top, True)
    discounts = torch.from_numpy(dcg_discounts(k)).float()
    ideal = discounts.sum()

    def evaluate(module: nn.Module) -> float:
        with torch.inference_mode():
            s = module(_as_scoring(module).item_hidden(item_x), lx, px)
        hits = torch.gather(relevant, 1, _topk_unvisited(s, visited, k)).float()
        return float(((hits * discounts).sum(1) / ideal).mean())

    return evaluate


def distill_finetune(
    rec: Recommender,
    *,
    epochs: int = 3,
    lr: float = 2e-3,
    batch_size: int = 64,
    max_learners: int = 2048,
    seed: int = 0,
    threads: int | None = None,
) -> Finetune:
    """finetune(module): match the fp32 network's softmax over each learner's unvisited
    items (KL divergence) on the runs' learners at their as-of day."""
    teacher = copy.deepcopy(rec.net).eval()

    def finetune(module: nn.Module) -> nn.Module:
        previous = torch.get_num_threads()
        torch.set_num_threads(threads or 1)
        rng = np.random.default_rng(seed)
        try:
            batches: list[tuple[CourseId, np.ndarray]] = []
            for course, run in rec.runs.items():
                rows = np.arange(run.n_learners)
                if len(rows) > max_learners:
                    rows = np.sort(rng.choice(rows, max_learners, replace=False))
                for start in range(0, len(rows), batch_size):
                    batches.append((course, rows[start : start + batch_size]))
            params = [p for p in module.parameters() if p.requires_grad]
            if not params or not batches:
                return module
            cache: dict[int, tuple[torch.Tensor, ...]] = {}
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
            module.train()
            for _ in range(epochs):
                for bi in rng.permutation(len(batches)):
                    if bi not in cache:
                        course, rows = batches[bi]
                        item_x, lx, px, visited = rec.model_inputs(course, rows)
                        with torch.no_grad():
                            t = teacher(teacher.item_hidden(item_x), lx, px)
                            target = torch.log_softmax(t.masked_fill(visited, -1e9), dim=1)
                        cache[bi] = (item_x, lx, px, visited, target)
                    item_x, lx, px, visited, target = cache[bi]
                    s = module(_as_scoring(module).item_hidden(item_x), lx, px)
                    logp = torch.log_softmax(s.masked_fill(visited, -1e9), dim=1)
                    loss = (target.exp() * (target - logp)).sum(1).mean()
                    opt.zero_grad()
                    loss.backward()  # type: ignore[no-untyped-call]  # unannotated in torch 2.13
                    opt.step()
        finally:
            torch.set_num_threads(previous)
        return module.eval()

    return finetune


def synthetic_catalogue(
    n_items: int,
    *,
    seed: int = 0,
    n_learners: int = 500,
    n_days: int = 70,
    holdout_days: int = 14,
    log: Callable[[str], None] | None = None,
) -> tuple[Recommender, list[RunSplit], int]:
    """A recommender trained on one synthetic course run of `n_items` items, and the
    held-out split to score it: (rec, splits, split_day): trained on the clicks before
    ``n_days - holdout_days``, the first visits after are held out (the product's
    NDCG@10 protocol)."""
    from recommender.model.evaluate import split_runs, train_view
    from recommender.model.synthetic import synthetic_learning_data
    from recommender.model.timeline import Params

    data = synthetic_learning_data(
        n_items=n_items,
        n_learners=n_learners,
        n_days=n_days,
        seed=seed,
        course_ids=("SYN_BENCH",),
        n_hubs=min(4, max(n_items // 20, 1)),  # as build_synthetic
        p_visit=min(0.8, 80.0 / max(n_items, 1)),
    )
    split = n_days - holdout_days
    rec = Recommender.fit(train_view(data, split), split, Params(seed=seed), log=log)
    return rec, split_runs(data, split), split


def recommender_serving_state(
    rec: Recommender, module: nn.Module, variant: str | None = None
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The recommender's artifact with `module` (compressed) in place of its network."""
    return serving_state_fn(rec, variant)(module)


def load_recommender(tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> Recommender:
    """`Recommender.from_state` that also reads states with a compressed network."""
    if "compression" not in config:
        return Recommender.from_state(tensors, config)
    build = scoring_base_builder(config["net"])
    placeholder = {f"net.{k}": v for k, v in build().state_dict().items()}
    plain = {k: v for k, v in tensors.items() if not k.startswith(VARIANT_PREFIX)}
    rec = Recommender.from_state({**plain, **placeholder}, config)
    variant = {
        k[len(VARIANT_PREFIX) :]: v for k, v in tensors.items() if k.startswith(VARIANT_PREFIX)
    }
    rec.use_network(load_variant(variant, config["compression"], build))
    return rec


def serving_state_fn(rec: Recommender, variant: str | None = None) -> StateFn:
    # The run state is the same for every variant: build it once, swap the network.
    base_tensors, base_config = rec.to_state()
    base_tensors = {k: v for k, v in base_tensors.items() if not k.startswith("net.")}

    def state(module: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        vt, vc = variant_state(module, {"variant": variant} if variant else None)
        return (
            {**base_tensors, **{VARIANT_PREFIX + k: v for k, v in vt.items()}},
            {**base_config, "compression": vc},
        )

    return state


def compress_recommender(
    rec: Recommender,
    *,
    evaluate: Callable[[nn.Module], float | np.ndarray],
    finetune: Callable[[nn.Module], nn.Module] | None,
    policy: SelectionPolicy | None = None,
    settings: CompressionSettings | None = None,
    course: CourseId | None = None,
    with_serving_bytes: bool = True,
    log: Callable[[str], None] | None = None,
) -> CompressionResult:
    """Every variant of the recommender's scoring network, measured; one chosen."""
    shape = net_shape(rec)
    result = compress_model(
        rec.net,
        build_base=scoring_base_builder(shape),
        example_inputs_b1=scoring_inputs(rec, 1, course),
        example_inputs_b256=scoring_inputs(rec, 256, course),
        evaluate=evaluate,
        finetune=finetune,
        policy=policy or SelectionPolicy.recommender(),
        settings=settings or CompressionSettings.recommender(),
        groups=scoring_groups(rec.net),
        forward=chunked_scoring,
        prepare_inputs=prepare_scoring,
        serving_state=serving_state_fn(rec) if with_serving_bytes else None,
        log=log,
    )
    course = _largest_run(rec) if course is None else course
    result.extra.update(
        {
            "kind": "recommender",
            "items": int(sum(r.n_items for r in rec.runs.values())),
            "timed_run": str(course),
            "timed_run_items": int(rec.runs[course].n_items),
        }
    )
    return result


def compression_report(
    load_data: Callable[[], tuple[LearningData, str]],
    *,
    settings: CompressionSettings,
    policy: SelectionPolicy,
    split_day: int = 100,
    catalog_items: int | None = None,
    learners: int = 500,
    untrained: bool = False,
    seed: int = 0,
    max_epochs: int | None = None,
    finetune_epochs: int | None = None,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[CompressionResult, str]:
    """Train (on `load_data()`'s clicks before `split_day`, or on a synthetic catalogue of
    `catalog_items` items), build every variant, and return the report and its title.

    Raises ValueError on a catalogue under 20 items or data with nothing to learn.

    Long because its two data sources (a synthetic catalogue or an OULAD folder) each train,
    compress and report in a few steps that share their settings.
    """
    import time

    from recommender.model.evaluate import split_runs, train_view
    from recommender.model.timeline import Params

    epochs = 3 if finetune_epochs is None else finetune_epochs
    if catalog_items:
        if catalog_items < 20:
            raise ValueError("--catalog-items must be at least 20")
        large = catalog_items > 5000
        t0 = time.perf_counter()
        evaluate: Callable[[nn.Module], float | np.ndarray]
        if untrained:
            from recommender.model.synthetic import build_synthetic

            rec = build_synthetic(catalog_items, seed=seed, n_learners=learners)
            evaluate = fidelity_evaluator(rec, learners=200)
            what = "untrained network, quality = agreement with fp32's top 10"
        else:
            rec, splits, split = synthetic_catalogue(catalog_items, seed=seed, n_learners=learners)
            evaluate = ndcg_evaluator(rec, splits, split)
            n_test = sum(len(x.test_rows) for x in splits)
            what = (
                f"trained on days < {split}, NDCG@10 of the later first visits of {n_test} learners"
            )
        log(
            f"synthetic catalogue of {catalog_items} items ready in {time.perf_counter() - t0:.1f}s"
        )
        finetune = distill_finetune(
            rec,
            epochs=epochs,
            batch_size=8 if large else 64,
            max_learners=64 if large else 2048,
        )
        result = compress_recommender(
            rec, evaluate=evaluate, finetune=finetune, policy=policy, settings=settings, log=log
        )
        result.extra.update({"quality": what})
        return result, f"recommender, synthetic catalogue of {catalog_items} items ({what})"

    data, label = load_data()
    params = Params(seed=seed)
    if max_epochs:
        params = dataclasses.replace(params, epochs=max(1, max_epochs))
    t0 = time.perf_counter()
    view = train_view(data, split_day)
    if view.item_activity.empty:
        raise ValueError(f"no clicks before day {split_day}")
    rec = Recommender.fit(view, split_day, params)
    log(f"recommender: {label}; trained in {time.perf_counter() - t0:.1f}s")
    splits = split_runs(data, split_day)
    if not splits:
        raise ValueError(f"no learner with clicks both before and after day {split_day}")
    result = compress_recommender(
        rec,
        evaluate=ndcg_evaluator(rec, splits, split_day),
        finetune=distill_finetune(rec, epochs=epochs),
        policy=policy,
        settings=settings,
        log=log,
    )
    result.extra.update(
        {
            "data": label,
            "split_day": split_day,
            "test_learners": sum(len(x.test_rows) for x in splits),
        }
    )
    return result, f"recommender, {label}, split day {split_day}"
