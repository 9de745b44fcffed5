"""How retraining runs the compression stage (the kinds call these; docs/compression.md)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from eduplatform.ml.compress import CompressionResult, CompressionSettings
from eduplatform.registry.kinds import TrainingRejected


def compression_wanted(parameters: dict[str, Any]) -> bool:
    """On unless switched off platform-wide (MODEL_COMPRESSION) or per run ("compress": false)."""
    return bool(settings.MODEL_COMPRESSION) and bool(parameters.get("compress", True))


def retrain_settings(base: CompressionSettings) -> CompressionSettings:
    """The kind's recipe, timed within the retrain's budget (COMPRESSION_TIMING_SECONDS
    per batch size for all variants together, interleaved, so ratios stay fair)."""
    base.bench_seconds = float(settings.COMPRESSION_TIMING_SECONDS)
    return base


def serve_requested(result: CompressionResult, parameters: dict[str, Any]) -> CompressionResult:
    """Honour a run's "serve_variant" parameter (an operator's recipe, e.g. chosen on
    other data); the policy's own choice stays in the report."""
    wanted = parameters.get("serve_variant")
    if wanted:
        try:
            result.force(str(wanted), f"{wanted} requested for this run")
        except KeyError:
            raise TrainingRejected(
                f"serve_variant {wanted!r} was not built (built: "
                f"{', '.join(r.name for r in result.rows)})"
            ) from None
    return result
