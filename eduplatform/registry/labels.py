"""Words for the keys of metrics and compression reports on the models page.

Versions store their metrics and compression reports as JSON written by the
Django-free training code, keyed by identifiers (`val_auc_per_cutoff`,
`p50_b256_ms`, the selection policy's fields). The page shows them through this
table, in the reader's language. A key not in the table (a report from a newer
training recipe) is shown with its underscores as spaces, as before.
"""

from __future__ import annotations

from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

LABELS: dict[str, Promise] = {
    # Compression variants (eduplatform/ml/compress/pipeline.py: VariantRow).
    "name": _("variant"),
    "artifact_bytes": _("artifact size (bytes)"),
    "serving_bytes": _("serving artifact size (bytes)"),
    "size_ratio": _("times smaller"),
    "params": _("parameters"),
    "nonzero_params": _("non-zero parameters"),
    "p50_b1_ms": _("p50 latency, batch 1 (ms)"),
    "p99_b1_ms": _("p99 latency, batch 1 (ms)"),
    "p50_b256_ms": _("p50 latency, batch 256 (ms)"),
    "p99_b256_ms": _("p99 latency, batch 256 (ms)"),
    "speedup_b1": _("speed-up, batch 1"),
    "speedup_b256": _("speed-up, batch 256"),
    "samples_b1": _("timing samples, batch 1"),
    "samples_b256": _("timing samples, batch 256"),
    "quality": _("quality"),
    "quality_loss": _("quality loss"),
    "quality_ok": _("quality within tolerance"),
    # xgettext:no-python-format ("95% i" is text, not a %i directive)
    "quality_interval": _("quality loss, 95% interval (+/-)"),
    "quality_units": _("quality test units"),
    "latency_ok": _("latency within limit"),
    "eligible": _("eligible"),
    "build_seconds": _("build time (s)"),
    # The report around the variants, and its selection policy.
    "chosen": _("chosen variant"),
    "reason": _("reason"),
    "metric": _("quality metric"),
    "policy": _("selection policy"),
    "settings": _("compression settings"),
    "environment": _("timing environment"),
    "extra": _("details"),
    "served_model": _("served model"),
    "policy_choice": _("the policy's choice"),
    "tolerance": _("tolerance"),
    "relative": _("relative"),
    "max_latency_ratio": _("maximum latency ratio"),
    "objective": _("objective"),
    "size_weight": _("size weight"),
    "speed_weight": _("speed weight"),
    "size_slack": _("size slack"),
    "candidates": _("candidates"),
    "ci_z": _("interval width (standard errors)"),
    "variants": _("variants"),
    "magnitude_sparsity": _("magnitude pruning sparsity"),
    "magnitude_steps": _("magnitude pruning steps"),
    "structured_keep": _("structured pruning: share kept"),
    "structured_steps": _("structured pruning steps"),
    "lowrank_energy": _("low-rank: energy kept"),
    "lowrank_budget": _("low-rank: parameter budget"),
    "linear_backend": _("quantized linear backend"),
    "linear_backend_resolved": _("quantized linear backend in use"),
    "embedding_bits": _("embedding bits"),
    "threads": _("threads"),
    "repeats_b1": _("timing repeats, batch 1"),
    "repeats_b256": _("timing repeats, batch 256"),
    "min_repeats": _("minimum timing repeats"),
    "bench_seconds": _("timing budget (s)"),
    "warmup": _("warm-up runs"),
    "date": _("date"),
    "torch": _("PyTorch"),
    "python": _("Python"),
    "cpu": _("CPU"),
    "cores": _("CPU cores"),
    "load_average": _("load average"),
    "network_bytes": _("network size (bytes)"),
    "fp32_network_bytes": _("fp32 network size (bytes)"),
    "fp32_artifact_bytes": _("fp32 artifact size (bytes)"),
    "kind": _("model kind"),
    "data": _("data"),
    "validation": _("validation data"),
    "items": _("items"),
    "timed_run": _("timed course run"),
    "timed_run_items": _("items of the timed course run"),
    "test_learners": _("test learners"),
    # Metrics of a version (churn/services.py, recommender/services.py, eduplatform/ml/metrics.py).
    "score": _("score"),
    "champion_score": _("champion score"),
    "auc": _("AUC"),
    "val_auc": _("validation AUC"),
    "val_auc_per_cutoff": _("validation AUC per cut-off day"),
    "n": _("rows"),
    "n_train": _("training rows"),
    "n_val": _("validation rows"),
    "positive_rate": _("share of positives"),
    "positive_rate_val": _("share of leavers in validation"),
    "val_courses": _("validation course runs"),
    "stage_seconds": _("seconds per stage"),
    "as_of": _("as of"),
    "warm_start": _("warm start"),
    "roc_auc": _("ROC AUC"),
    "pr_auc": _("PR AUC"),
    "f1": _("F1"),
    "threshold": _("threshold"),
    "precision": _("precision"),
    "recall": _("recall"),
    "brier": _("Brier score"),
    "ndcg@10": _("NDCG@10"),
    "ndcg@10_fp32": _("NDCG@10 of fp32"),
    "recall@10": _("recall@10"),
    "coverage": _("catalogue coverage"),
    "validation_learners": _("validation learners"),
    "split_day": _("split day"),
    "best_epochs": _("best epochs"),
    "train_cutoffs": _("training cut-off days"),
    "teacher": _("teacher"),
    "teacher_seconds": _("teacher training time (s)"),
}


def label(key: str) -> str:
    """`key` in words, in the active language."""
    known = LABELS.get(key)
    if known is not None:
        return str(known)
    if "." in key:
        # A flattened column of a nested report ("quality.auc").
        parent, child = key.split(".", 1)
        return gettext("%(parent)s: %(child)s") % {"parent": label(parent), "child": label(child)}
    return key.replace("_", " ")
