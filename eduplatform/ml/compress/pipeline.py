"""Build every variant of a model, measure it, choose the one to serve.

`compress_model(module, ...)` builds the variants named in
`CompressionSettings.variants`, and for each one

* writes its artifact (`variant_state` through eduplatform.ml.artifacts) to a
  temporary directory and stats the file,
* counts its parameters (and the non-zero ones),
* times it at batch 1 and batch 256 in this process, one thread count, the
  variants' calls interleaved (round-robin, the order rotating every round) so
  that load on the machine hits all of them alike,
* scores it with the caller's ``evaluate(module)`` (higher is better): a float, or
  one value per test unit (e.g. per learner's NDCG@10), whose mean is the quality and
  whose paired differences with fp32 give the loss a 95% interval,

then `select_variant` applies the `SelectionPolicy`. The result and its report
are JSON-serializable (`CompressionResult.to_dict`).
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from eduplatform.ml.artifacts import save_artifact
from eduplatform.ml.compress.methods import (
    Finetune,
    UnitGroup,
    low_rank,
    magnitude_prune,
    mlp_groups,
    quantize,
    resolve_linear_backend,
    structured_prune,
)
from eduplatform.ml.compress.serialize import parameter_counts, variant_state
from eduplatform.ml.compress.timing import (
    Forward,
    Inputs,
    environment,
    measure_latency,
    percentile_ms,
)

FP32 = "fp32"
VARIANTS = (
    FP32,
    "pruned",
    "structured",
    "quantized",
    "low-rank",
    "pruned+quantized",
    "structured+quantized",
    "low-rank+quantized",
)
Prepare = Callable[[nn.Module, Inputs], Inputs]


@dataclass
class SelectionPolicy:
    """Which variant to serve.

    A variant qualifies when its quality loss against fp32 is at most `tolerance`
    (absolute, or relative to the fp32 quality when `relative`) and its p50 latency
    at batch 1 and at batch 256 is at most `max_latency_ratio` x fp32's (timings
    on a shared machine are noisy, hence some slack). Among the qualifying
    variants, by `objective`:

    "balanced" (default)  the largest ``size_weight * ln(size_ratio) + speed_weight *
                          ln(sqrt(speedup_b1 * speedup_b256))``: smaller and faster
                          both count (e.g. 7.5x smaller at the same speed loses to
                          5.4x smaller and 1.4x faster).
    "size"                the smallest artifact; variants within `size_slack` of it
                          are compared on speed (p50 at batch 256, then batch 1).
    "speed"               the fastest at batch 256 (then batch 1, then size).

    With no qualifying variant, fp32 is served.

    When `evaluate` gives one value per test unit, a loss inside the 95% interval of the
    paired difference with fp32 (`ci_z` standard errors) is no measured loss: the
    variant is equal on quality and qualifies whatever `tolerance` says (#23: a 40%
    "loss" on two hits refused the fastest variant).
    """

    metric: str = "auc"
    tolerance: float = 0.005
    relative: bool = False
    max_latency_ratio: float = 1.25
    objective: str = "balanced"
    size_weight: float = 1.0
    speed_weight: float = 1.0
    size_slack: float = 0.10
    candidates: tuple[str, ...] | None = None  # None: every built variant
    ci_z: float = 1.96

    @classmethod
    def churn(cls, **overrides: Any) -> SelectionPolicy:
        return cls(**{"metric": "auc", "tolerance": 0.005, "relative": False, **overrides})

    @classmethod
    def recommender(cls, **overrides: Any) -> SelectionPolicy:
        return cls(**{"metric": "ndcg@10", "tolerance": 0.02, "relative": True, **overrides})

    def score(self, row: VariantRow) -> float:
        """The "balanced" objective of a row (higher is better)."""
        speed = math.sqrt(max(row.speedup_b1, 1e-9) * max(row.speedup_b256, 1e-9))
        return self.size_weight * math.log(max(row.size_ratio, 1e-9)) + self.speed_weight * (
            math.log(speed)
        )

    def quality_loss(self, base: float, value: float) -> float:
        if not (math.isfinite(base) and math.isfinite(value)):
            return math.inf
        loss = base - value
        if self.relative:
            return loss / abs(base) if base else (0.0 if loss <= 0 else math.inf)
        return loss

    def loss_interval(self, base: np.ndarray, values: np.ndarray) -> float | None:
        """Half-width of the loss's interval (policy terms) from paired per-unit values;
        None for a single figure or fewer than two units."""
        if base.size < 2 or base.shape != values.shape:
            return None
        diff = base - values
        half = self.ci_z * float(diff.std(ddof=1)) / math.sqrt(diff.size)
        mean = float(base.mean())
        if self.relative:
            return half / abs(mean) if mean else math.inf
        return half

    def quality_ok(self, loss: float, interval: float | None) -> bool:
        return loss <= self.tolerance or (interval is not None and loss <= interval)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["candidates"] = None if self.candidates is None else list(self.candidates)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SelectionPolicy:
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in values.items() if k in known}
        if kw.get("candidates") is not None:
            kw["candidates"] = tuple(kw["candidates"])
        return cls(**kw)


@dataclass
class CompressionSettings:
    """How the variants are built and timed."""

    variants: tuple[str, ...] = VARIANTS
    magnitude_sparsity: float = 0.8
    magnitude_steps: int = 2
    structured_keep: float = 0.5
    structured_steps: int = 1
    lowrank_energy: float | None = 0.9
    lowrank_budget: float | None = 0.5
    linear_backend: str = "auto"
    embedding_bits: int = 8
    threads: int = 1
    repeats_b1: int = 200
    repeats_b256: int = 30
    min_repeats: int = 5
    bench_seconds: float = 60.0  # per batch size, all variants together
    warmup: int = 2

    @classmethod
    def churn(cls, **overrides: Any) -> CompressionSettings:
        """Half of the hidden units: a quarter lost 0.008 AUC on OULAD (docs/compression.md)."""
        return cls(**{"structured_keep": 0.5, **overrides})

    @classmethod
    def recommender(cls, **overrides: Any) -> CompressionSettings:
        """A quarter of the hidden units and embedding dimensions: no NDCG@10 loss on
        OULAD after distillation, and the scoring cost is mostly those widths."""
        return cls(**{"structured_keep": 0.25, **overrides})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["variants"] = list(self.variants)
        d["linear_backend_resolved"] = resolve_linear_backend(self.linear_backend)
        return d


@dataclass
class VariantRow:
    name: str
    artifact_bytes: int
    size_ratio: float  # fp32 bytes / these bytes (> 1: smaller)
    params: int
    nonzero_params: int
    p50_b1_ms: float
    p99_b1_ms: float
    p50_b256_ms: float
    p99_b256_ms: float
    speedup_b1: float  # fp32 p50 / this p50
    speedup_b256: float
    quality: float
    quality_loss: float  # against fp32, in the policy's terms (relative or absolute)
    quality_ok: bool
    latency_ok: bool
    build_seconds: float
    serving_bytes: int | None = None  # the whole serving artifact with this module
    samples_b1: int = 0
    samples_b256: int = 0
    # 95% half-width of quality_loss (paired per-unit values), None for a single figure
    quality_interval: float | None = None
    quality_units: int = 0

    @property
    def eligible(self) -> bool:
        return self.quality_ok and self.latency_ok

    def to_dict(self) -> dict[str, Any]:
        d = {k: _clean(v) for k, v in asdict(self).items()}
        d["eligible"] = self.eligible
        return d


@dataclass
class CompressionResult:
    rows: list[VariantRow]
    chosen: str
    reason: str
    policy: SelectionPolicy
    settings: CompressionSettings
    modules: dict[str, nn.Module] = field(default_factory=dict, repr=False)
    environment: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> VariantRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(name)

    def force(self, name: str, why: str) -> None:
        """Serve `name` whatever the policy says (e.g. a recipe chosen on other data);
        the policy's own choice stays in the report."""
        self.row(name)  # KeyError for an unknown variant
        self.extra["policy_choice"] = {"chosen": self.chosen, "reason": self.reason}
        self.chosen = name
        self.reason = f"{why}; the policy alone would serve {self.extra['policy_choice']['chosen']}"

    @property
    def module(self) -> nn.Module:
        """The chosen variant's module."""
        return self.modules[self.chosen]

    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, config) of the chosen module (`load_variant` rebuilds it)."""
        return variant_state(self.module, {"variant": self.chosen})

    def to_dict(self) -> dict[str, Any]:
        return cast(
            dict[str, Any],
            _clean(
                {
                    "chosen": self.chosen,
                    "reason": self.reason,
                    "metric": self.policy.metric,
                    "policy": self.policy.to_dict(),
                    "settings": self.settings.to_dict(),
                    "variants": [r.to_dict() for r in self.rows],
                    "environment": self.environment,
                    **({"extra": self.extra} if self.extra else {}),
                }
            ),
        )

    def table(self) -> str:
        return format_table(self)


def _clean(v: object) -> Any:
    """`v` as JSON-ready values: non-finite floats -> None, tuples -> lists, numpy scalars
    -> Python ones, dict keys -> str."""
    if isinstance(v, float):
        return None if not math.isfinite(v) else v
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        return _clean(v.item())
    return v


# ------------------------------------------------------------------------------ build


def build_variant(
    name: str,
    module: nn.Module,
    *,
    settings: CompressionSettings | None = None,
    groups: list[UnitGroup] | None = None,
    finetune: Finetune | None = None,
    built: dict[str, nn.Module] | None = None,
) -> nn.Module:
    """One variant of `module` by name (``a+quantized`` reuses `built[a]` if given).

    The registry uses this to apply the recipe chosen on validation data to the
    model refitted on all data.
    """
    s = settings or CompressionSettings()
    built = built if built is not None else {}
    if name == FP32:
        return module.eval()
    if name.endswith("+quantized"):
        base_name = name[: -len("+quantized")]
        base = built.get(base_name)
        if base is None:
            base = build_variant(
                base_name, module, settings=s, groups=groups, finetune=finetune, built=built
            )
            built[base_name] = base
        return quantize(base, s.linear_backend, s.embedding_bits)
    if name == "quantized":
        return quantize(module, s.linear_backend, s.embedding_bits)
    if name == "pruned":
        return magnitude_prune(
            module, s.magnitude_sparsity, finetune=finetune, steps=s.magnitude_steps
        )
    if name == "structured":
        return structured_prune(
            module,
            mlp_groups(module) if groups is None else groups,
            s.structured_keep,
            finetune=finetune,
            steps=s.structured_steps,
        )
    if name == "low-rank":
        return low_rank(module, energy=s.lowrank_energy, budget=s.lowrank_budget, finetune=finetune)
    raise ValueError(f"unknown variant {name!r} (known: {', '.join(VARIANTS)})")


# -------------------------------------------------------------------------- measuring


def artifact_size(tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> int:
    """Bytes on disk: the artifact is really written (atomic write) and stat'ed."""
    with tempfile.TemporaryDirectory(prefix="compress-") as tmp:
        path = Path(tmp) / "variant.safetensors"
        save_artifact(path, tensors, config)
        return path.stat().st_size


def select_variant(rows: Sequence[VariantRow], policy: SelectionPolicy) -> tuple[str, str]:
    """(name, reason) of the variant to serve under `policy`."""
    allowed = [
        r
        for r in rows
        if r.name != FP32 and (policy.candidates is None or r.name in policy.candidates)
    ]
    ok = [r for r in allowed if r.eligible]
    if not ok:
        why = "; ".join(
            f"{r.name}: "
            + ("quality" if not r.quality_ok else "")
            + (" and " if not r.quality_ok and not r.latency_ok else "")
            + ("latency" if not r.latency_ok else "")
            for r in allowed
        )
        return FP32, f"no variant within tolerance ({why or 'none built'}); serving fp32"
    tol = f"tolerance {policy.tolerance}{' relative' if policy.relative else ''}"
    if policy.objective == "size":
        smallest = min(r.artifact_bytes for r in ok)
        near = [r for r in ok if r.artifact_bytes <= smallest * (1.0 + policy.size_slack)]
        best = min(near, key=lambda r: (r.p50_b256_ms, r.p50_b1_ms, r.artifact_bytes))
        why = f"smallest qualifying ({', '.join(r.name for r in near)}), then fastest"
    elif policy.objective == "speed":
        best = min(ok, key=lambda r: (r.p50_b256_ms, r.p50_b1_ms, r.artifact_bytes))
        why = "fastest qualifying at batch 256"
    elif policy.objective == "balanced":
        best = max(ok, key=lambda r: (policy.score(r), -r.artifact_bytes))
        why = "best size x speed score among qualifying variants"
    else:
        raise ValueError(f"unknown objective {policy.objective!r}")
    if best.quality_interval is not None:
        tol += f"; 95% interval +-{best.quality_interval:.4f} over {best.quality_units} units"
        if best.quality_loss > policy.tolerance:
            tol += ": inside it, no measured loss"
    return best.name, (
        f"{why}: {best.size_ratio:.1f}x smaller, {best.speedup_b1:.2f}x / "
        f"{best.speedup_b256:.2f}x as fast at batch 1 / 256, quality loss "
        f"{best.quality_loss:+.4f} ({tol})"
    )


# ----------------------------------------------------------------------------- driver


def compress_model(
    module: nn.Module,
    *,
    build_base: Callable[[], nn.Module],
    example_inputs_b1: Inputs,
    example_inputs_b256: Inputs,
    evaluate: Callable[[nn.Module], float | np.ndarray],
    finetune: Finetune | None,
    policy: SelectionPolicy | None = None,
    settings: CompressionSettings | None = None,
    groups: list[UnitGroup] | None = None,
    forward: Forward | None = None,
    prepare_inputs: Prepare | None = None,
    serving_state: Callable[[nn.Module], tuple[dict[str, torch.Tensor], dict[str, Any]]]
    | None = None,
    log: Callable[[str], None] | None = None,
) -> CompressionResult:
    """Build, save, time and score every variant; choose one by `policy`.

    `build_base()` returns a module of the original (fp32) architecture: the
    artifacts are checked to load back through it. `prepare_inputs(module,
    inputs)` (optional) turns the example inputs into that module's inputs
    outside the timed region (e.g. per-item hidden parts cached in serving);
    `forward(module, inputs)` defaults to ``module(*inputs)``. `serving_state`
    (optional) returns the whole serving artifact with a given module, whose
    size is reported as `serving_bytes`.

    Long because it builds, fine-tunes, measures and reports every variant in one loop over the
    same settings and timer; the steps share that state.
    """
    from eduplatform.ml.compress.serialize import load_variant

    say = log or (lambda _m: None)
    policy = policy or SelectionPolicy()
    s = settings or CompressionSettings()
    names = [FP32] + [n for n in s.variants if n != FP32]
    module = module.eval()
    built: dict[str, nn.Module] = {}
    seconds: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        built[name] = build_variant(
            name, module, settings=s, groups=groups, finetune=finetune, built=built
        ).eval()
        seconds[name] = time.perf_counter() - t0
        say(f"built {name} in {seconds[name]:.1f}s")
    built = {n: built[n] for n in names}

    sizes, serving, counts = {}, {}, {}
    for name, m in built.items():
        tensors, config = variant_state(m, {"variant": name})
        sizes[name] = artifact_size(tensors, config)
        reloaded = load_variant(tensors, config, build_base)  # fails loudly if incomplete
        del reloaded
        counts[name] = parameter_counts(m)
        if serving_state is not None:
            serving[name] = artifact_size(*serving_state(m))

    def prepared(inputs: Inputs) -> dict[str, Inputs]:
        if prepare_inputs is None:
            return {n: inputs for n in built}
        with torch.inference_mode():
            return {n: prepare_inputs(m, inputs) for n, m in built.items()}

    lat = {}
    for label, inputs, repeats in (
        ("b1", example_inputs_b1, s.repeats_b1),
        ("b256", example_inputs_b256, s.repeats_b256),
    ):
        say(f"timing batch {label[1:]}")
        lat[label] = measure_latency(
            built,
            prepared(inputs),
            forward=forward,
            repeats=repeats,
            min_repeats=s.min_repeats,
            warmup=s.warmup,
            max_seconds=s.bench_seconds,
            threads=s.threads,
        )

    quality, units = {}, {}
    for name, m in built.items():
        units[name] = np.atleast_1d(np.asarray(evaluate(m), dtype=np.float64))
        quality[name] = float(units[name].mean()) if units[name].size else math.nan
        say(f"{name}: {policy.metric} {quality[name]:.4f}")

    base = FP32
    rows = []
    for name in built:
        p50_1, p50_256 = percentile_ms(lat["b1"][name], 50), percentile_ms(lat["b256"][name], 50)
        b1_ref, b256_ref = percentile_ms(lat["b1"][base], 50), percentile_ms(lat["b256"][base], 50)
        loss = 0.0 if name == base else policy.quality_loss(quality[base], quality[name])
        interval = policy.loss_interval(units[base], units[name])
        rows.append(
            VariantRow(
                name=name,
                artifact_bytes=sizes[name],
                size_ratio=sizes[base] / sizes[name],
                params=counts[name][0],
                nonzero_params=counts[name][1],
                p50_b1_ms=p50_1,
                p99_b1_ms=percentile_ms(lat["b1"][name], 99),
                p50_b256_ms=p50_256,
                p99_b256_ms=percentile_ms(lat["b256"][name], 99),
                speedup_b1=b1_ref / p50_1 if p50_1 else math.nan,
                speedup_b256=b256_ref / p50_256 if p50_256 else math.nan,
                quality=quality[name],
                quality_loss=loss,
                quality_ok=name == base or policy.quality_ok(loss, interval),
                latency_ok=name == base
                or (
                    p50_1 <= policy.max_latency_ratio * b1_ref
                    and p50_256 <= policy.max_latency_ratio * b256_ref
                ),
                build_seconds=seconds[name],
                serving_bytes=serving.get(name),
                samples_b1=len(lat["b1"][name]),
                samples_b256=len(lat["b256"][name]),
                quality_interval=interval,
                quality_units=int(units[name].size),
            )
        )
    chosen, reason = select_variant(rows, policy)
    return CompressionResult(
        rows=rows,
        chosen=chosen,
        reason=reason,
        policy=policy,
        settings=s,
        modules=built,
        environment=environment(s.threads),
    )


def format_table(result: CompressionResult) -> str:
    metric = result.policy.metric
    head = (
        f"{'variant':<22} {'bytes':>10} {'smaller':>7} {'params':>9} {'nonzero':>9} "
        f"{'b1 p50':>8} {'b1 p99':>8} {'speedup':>7} {'b256 p50':>9} {'b256 p99':>9} "
        f"{'speedup':>7} {metric:>8} {'loss':>8} {'+-95%':>7}  ok"
    )
    lines = [head, "-" * len(head)]
    for r in result.rows:
        mark = "*" if r.name == result.chosen else " "
        ok = (
            "yes"
            if r.eligible
            else ("q" if not r.quality_ok else "") + ("t" if not r.latency_ok else "")
        )
        lines.append(
            f"{mark}{r.name:<21} {r.artifact_bytes:>10,} {r.size_ratio:>6.2f}x {r.params:>9,} "
            f"{r.nonzero_params:>9,} {r.p50_b1_ms:>8.3f} {r.p99_b1_ms:>8.3f} "
            f"{r.speedup_b1:>6.2f}x {r.p50_b256_ms:>9.3f} {r.p99_b256_ms:>9.3f} "
            f"{r.speedup_b256:>6.2f}x {r.quality:>8.4f} {r.quality_loss:>+8.4f} "
            f"{'' if r.quality_interval is None else f'{r.quality_interval:.4f}':>7}  {ok}"
        )
    lines.append(f"served: {result.chosen} ({result.reason})")
    lines.append(
        "times in ms (p50 / p99 over interleaved calls, "
        f"{result.environment.get('threads')} thread(s)); 'smaller' and 'speedup' vs fp32; "
        "ok: q = quality loss above tolerance and outside its 95% interval, "
        "t = slower than allowed"
    )
    return "\n".join(lines)
