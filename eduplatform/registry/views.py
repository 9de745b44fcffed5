"""The models page (HTML): every kind's active version, history, curves and compression report.

Reads come from `selectors.versions_for_page` (one query); everything else
here is pure shaping of those rows into template context and chart specs
(rendered by static/js/charts.js, each chart with a data table as its text
alternative). Operations (retrain, promote, rollback) are not views of their
own: the page's script calls the JSON API in eduplatform.registry.api, which
checks that the user is a platform admin.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeGuard

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from eduplatform.core import access
from eduplatform.core.charts import chart_card, chart_specs
from eduplatform.ml.compress.pipeline import VariantRow
from eduplatform.registry.headline import headline
from eduplatform.registry.kinds import kind_title
from eduplatform.registry.labels import label
from eduplatform.registry.models import ModelVersion
from eduplatform.registry.reasons import (
    STAGES,
    STATUSES,
    compression_reason_text,
    stage_text,
    status_reason_text,
)
from eduplatform.registry.selectors import KindVersions, versions_for_page

BYTES_KEYS = ("bytes", "artifact_bytes", "size_bytes", "size")
QUALITY_KEYS = ("quality", "score", "auc", "roc_auc", "ndcg@10", "recall@10", "accuracy", "f1")
QUALITY_HINTS = ("quality", "auc", "ndcg", "recall", "accuracy", "f1", "score")
NO_VALUE = "—"


# ---------------------------------------------------------------------------
# Small shaping helpers
# ---------------------------------------------------------------------------


def _is_number(value: Any) -> TypeGuard[float]:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def _fmt(value: Any, digits: int = 4) -> Any:
    """A table cell: rounded numbers, a dash for nothing, compact text for the rest."""
    if value is None or value == "":
        return NO_VALUE
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, float):
        return round(value, digits) if math.isfinite(value) else NO_VALUE
    if isinstance(value, (list, tuple)):
        return ", ".join(str(_fmt(v, digits)) for v in value)
    if isinstance(value, Mapping):
        return "; ".join(f"{label(str(k))}: {_fmt(v, digits)}" for k, v in value.items())
    return value


def _reasons_translated(key: str, value: Any) -> Any:
    """`value` with the compression policy's English reasons (the report's own and the
    policy's choice under "extra") in the page's language (reasons.py)."""
    if key == "reason" and isinstance(value, str):
        return compression_reason_text(value)
    if isinstance(value, Mapping):
        return {k: _reasons_translated(str(k), v) for k, v in value.items()}
    return value


def _label(key: str) -> str:
    # Keys of stored metrics and reports in words (labels.py: the table, in the page's language).
    return label(key)


def _table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> dict[str, Any]:
    return {
        "caption": caption,
        "headers": list(headers),
        "rows": [[_fmt(c) for c in row] for row in rows],
    }


def _points(xs: Sequence[Any], ys: Sequence[Any]) -> list[dict[str, float]]:
    return [
        {"x": float(x), "y": float(y)}
        for x, y in zip(xs, ys, strict=False)
        if _is_number(x) and _is_number(y)
    ]


DIAGONAL = {
    "label": gettext_lazy("Reference (diagonal)"),
    "data": [{"x": 0, "y": 0}, {"x": 1, "y": 1}],
    "showLine": True,
    "borderDash": [4, 4],
    "colorIndex": 7,
}


# ---------------------------------------------------------------------------
# Sections of one kind
# ---------------------------------------------------------------------------


def _headline_metrics(version: ModelVersion, primary: str) -> list[dict[str, Any]]:
    """The active version's scalar metrics: primary first, then the validation report."""
    metrics = version.metrics or {}
    out: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(key: str, label: str, value: Any) -> None:
        if key in seen or not _is_number(value):
            return
        seen.add(key)
        out.append({"key": key, "label": label, "value": _fmt(value)})

    add("score", _("score (%(metric)s, primary)") % {"metric": primary}, metrics.get("score"))
    add("champion_score", _("champion score"), metrics.get("champion_score"))
    for key, value in metrics.items():
        add(key, _label(key), value)
    report = metrics.get("report")
    if isinstance(report, Mapping):
        for key, value in report.items():
            add(f"report.{key}", _("validation %(metric)s") % {"metric": _label(key)}, value)
    # churn: the same figures at the medium band's threshold (#27 item 4)
    medium = metrics.get("report_medium")
    if isinstance(medium, Mapping):
        for key in ("threshold", "precision", "recall", "f1"):
            add(
                f"report_medium.{key}",
                _("validation %(metric)s, medium band") % {"metric": _label(key)},
                medium.get(key),
            )
    return out


TOP_FEATURES = 10


def _top_features(version: ModelVersion | None) -> list[dict[str, Any]]:
    """The version's stored permutation ranking (``metrics["feature_ranking"]``:
    [{"feature", "auc_drop"}], largest first), its first `TOP_FEATURES` rows; malformed
    entries are skipped (metrics are JSON written by every kind's training)."""
    ranking = ((version.metrics or {}) if version is not None else {}).get("feature_ranking")
    if not isinstance(ranking, list):
        return []
    rows = [
        r
        for r in ranking
        if isinstance(r, Mapping)
        and isinstance(r.get("feature"), str)
        and _is_number(r.get("auc_drop"))
    ]
    top = rows[:TOP_FEATURES]
    scale = max((abs(float(r["auc_drop"])) for r in top), default=0.0) or 1.0
    return [
        {
            "feature": r["feature"],
            "label": _label(r["feature"]),
            "drop": _fmt(float(r["auc_drop"])),
            # bar width in percent of the largest drop; a negative drop gets no bar
            "width": round(max(0.0, float(r["auc_drop"])) / scale * 100, 1),
        }
        for r in top
    ]


def _version_rows(group: KindVersions) -> list[dict[str, Any]]:
    return [
        {
            "version": v.version,
            "status": v.status,
            "reason": status_reason_text(v.status_reason),
            "score": _fmt((v.metrics or {}).get("score")),
            "champion_score": _fmt((v.metrics or {}).get("champion_score")),
            "triggered_by": v.triggered_by or NO_VALUE,
            "created_at": v.created_at,
            "finished_at": v.finished_at,
            "stage": stage_text(v.stage) if v.stage else "",
            "percent": v.percent,
        }
        for v in group.versions
    ]


def _history_chart(group: KindVersions) -> dict[str, Any]:
    chronological = [
        v for v in reversed(group.versions) if _is_number((v.metrics or {}).get("score"))
    ]
    labels = [f"v{v.version}" for v in chronological]
    scores = [float(v.metrics["score"]) for v in chronological]
    champions = [
        float(v.metrics["champion_score"]) if _is_number(v.metrics.get("champion_score")) else None
        for v in chronological
    ]
    datasets: list[dict[str, Any]] = [
        {
            "label": _("%(metric)s (primary)") % {"metric": _label(group.primary_metric)},
            "data": scores,
            "pointRadius": 4,
        }
    ]
    if any(c is not None for c in champions):
        datasets.append(
            {"label": _("champion on the same data"), "data": champions, "pointRadius": 4}
        )
    rows = [
        [label, s, c, v.status, v.created_at.strftime("%Y-%m-%d %H:%M")]
        for label, s, c, v in zip(labels, scores, champions, chronological, strict=True)
    ]
    return chart_card(
        f"{group.kind}-history",
        _("Metrics over time"),
        _(
            "%(metric)s of each trained version, oldest first, "
            "with the champion's score on the same validation data."
        )
        % {"metric": _label(group.primary_metric)},
        kind="line",
        labels=labels,
        datasets=datasets,
        table=_table(
            _("%(metric)s per version") % {"metric": _label(group.primary_metric)},
            [_("Version"), _("Score"), _("Champion score"), _("Status"), _("Created")],
            rows,
        ),
        empty=not chronological,
        empty_text=_("No finished version with a score yet."),
        yTitle=_label(group.primary_metric),
    )


def _curve_charts(kind: str, version: ModelVersion) -> list[dict[str, Any]]:
    """ROC, precision-recall and calibration of a version, when it recorded curves.

    Long because each chart of the models page is a short spec built from the same version
    metrics; one function keeps their order and shared axes together.
    """
    curves = (version.metrics or {}).get("curves")
    if not isinstance(curves, Mapping):
        return []
    label = f"v{version.version}"
    roc = curves.get("roc") or {}
    pr = curves.get("pr") or {}
    calibration = [b for b in curves.get("calibration") or [] if isinstance(b, Mapping)]
    roc_points = _points(roc.get("fpr") or [], roc.get("tpr") or [])
    pr_points = _points(pr.get("recall") or [], pr.get("precision") or [])
    cal_points = _points(
        [b.get("predicted") for b in calibration], [b.get("observed") for b in calibration]
    )
    report = (version.metrics or {}).get("report") or {}
    roc_auc = report.get("roc_auc", (version.metrics or {}).get("auc"))
    pr_auc = report.get("pr_auc")
    return [
        chart_card(
            f"{kind}-roc",
            _("ROC curve"),
            _(
                "True against false positive rate of the active version (%(version)s) on its "
                "validation rows; area %(area)s. The diagonal is chance."
            )
            % {"version": label, "area": _fmt(roc_auc, 3)},
            kind="scatter",
            datasets=[
                {
                    "label": _("%(version)s ROC") % {"version": label},
                    "data": roc_points,
                    "showLine": True,
                },
                DIAGONAL,
            ],
            table=_table(
                _("ROC curve of %(version)s") % {"version": label},
                [_("False positive rate"), _("True positive rate")],
                [[p["x"], p["y"]] for p in roc_points],
            ),
            empty=not roc_points,
            empty_text=_("This version recorded no ROC curve."),
            xTitle=_("False positive rate"),
            yTitle=_("True positive rate"),
        ),
        chart_card(
            f"{kind}-pr",
            _("Precision-recall curve"),
            _(
                "Precision against recall of %(version)s on its validation rows; "
                "average precision %(ap)s."
            )
            % {"version": label, "ap": _fmt(pr_auc, 3)},
            kind="scatter",
            datasets=[
                {
                    "label": _("%(version)s precision-recall") % {"version": label},
                    "data": pr_points,
                    "showLine": True,
                }
            ],
            table=_table(
                _("Precision-recall curve of %(version)s") % {"version": label},
                [_("Recall"), _("Precision")],
                [[p["x"], p["y"]] for p in pr_points],
            ),
            empty=not pr_points,
            empty_text=_("This version recorded no precision-recall curve."),
            xTitle=_("Recall"),
            yTitle=_("Precision"),
        ),
        chart_card(
            f"{kind}-calibration",
            _("Calibration"),
            _(
                "Observed dropout rate against the mean predicted risk per bin (%(version)s); "
                "a calibrated model follows the diagonal."
            )
            % {"version": label},
            kind="scatter",
            datasets=[
                {
                    "label": _("%(version)s bins") % {"version": label},
                    "data": cal_points,
                    "showLine": True,
                },
                DIAGONAL,
            ],
            table=_table(
                _("Calibration bins of %(version)s") % {"version": label},
                [_("Mean predicted"), _("Observed"), _("Learners")],
                [[b.get("predicted"), b.get("observed"), b.get("count")] for b in calibration],
            ),
            empty=not cal_points,
            empty_text=_("This version recorded no calibration bins."),
            xTitle=_("Predicted probability"),
            yTitle=_("Observed fraction"),
        ),
    ]


_FIELD_ORDER = {f.name: i for i, f in enumerate(dataclasses.fields(VariantRow))}


def _flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting becomes "parent.child" columns ({"quality": {"auc": ..}})."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, Mapping):
            for sub, inner in value.items():
                out[f"{key}.{sub}"] = inner
        else:
            out[str(key)] = value
    return out


def _pick(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], exact, hints) -> str | None:
    """The first column (exact names first, then by hint) holding a number in some row."""

    def numeric(col: str) -> bool:
        return any(_is_number(r.get(col)) for r in rows)

    for name in exact:
        if name in columns and numeric(name):
            return name
    for col in columns:
        if any(h in col.lower() for h in hints) and numeric(col):
            return col
    return None


def compression_section(kind: str, version: ModelVersion | None) -> dict[str, Any]:
    """A generic view of any compression report: all columns, size-against-quality when possible."""
    report = version.compression_report if version is not None else None
    variants = report.get("variants") if isinstance(report, Mapping) else None
    rows = [_flatten(v) for v in variants or [] if isinstance(v, Mapping)]
    if version is None or not rows:
        return {"empty": True, "chart": None}
    assert isinstance(report, Mapping)  # the rows come from its variants
    # The report's key order cannot be trusted: PostgreSQL's jsonb stores keys shortest
    # first, SQLite's JSON as written. So the kit's own field order (VariantRow), then any
    # other key alphabetically; the variant's name is the row header, first.
    keys = {k for row in rows for k in row} - {"name"}
    columns = ["name", *sorted(keys, key=lambda c: (_FIELD_ORDER.get(c, len(_FIELD_ORDER)), c))]
    chosen = report.get("chosen") or report.get("served") or version.served_variant or ""
    chosen = chosen if isinstance(chosen, str) else str(chosen)
    size_key = _pick(columns, rows, BYTES_KEYS, ("bytes", "size"))
    quality_key = _pick([c for c in columns if c != size_key], rows, QUALITY_KEYS, QUALITY_HINTS)
    table_rows = [
        {
            "name": row.get("name", NO_VALUE),
            "served": str(row.get("name")) == version.served_variant,
            "chosen": bool(chosen) and str(row.get("name")) == chosen,
            "cells": [_fmt(row.get(c)) for c in columns if c != "name"],
        }
        for row in rows
    ]
    chart = None
    if size_key and quality_key:
        in_bytes = "bytes" in size_key.lower()
        candidates = [
            (str(row.get("name", f"#{i + 1}")), row.get(size_key), row.get(quality_key))
            for i, row in enumerate(rows)
        ]
        points = [(n, s, q) for n, s, q in candidates if _is_number(s) and _is_number(q)]
        x_title = _("Size (KiB)") if in_bytes else _label(size_key)
        chart = chart_card(
            f"{kind}-compression",
            _("Size against quality"),
            _(
                "Each compression variant of v%(version)s: %(size)s against %(quality)s; "
                "up and to the left is better."
            )
            % {
                "version": version.version,
                "size": _label(size_key),
                "quality": _label(quality_key),
            },
            kind="scatter",
            datasets=[
                {
                    "label": _("%(variant)s (served)") % {"variant": name}
                    if name == version.served_variant
                    else name,
                    "data": [{"x": float(s) / 1024 if in_bytes else float(s), "y": float(q)}],
                    "pointRadius": 6,
                }
                for name, s, q in points
            ],
            table=_table(
                _("%(size)s and %(quality)s per variant")
                % {"size": _label(size_key), "quality": _label(quality_key)},
                [_("Variant"), x_title, _label(quality_key)],
                [[n, float(s) / 1024 if in_bytes else s, q] for n, s, q in points],
            ),
            empty=not points,
            empty_text=_("No variant has both a size and a quality."),
            xTitle=x_title,
            yTitle=_label(quality_key),
        )
    return {
        "empty": False,
        "version": version.version,
        "headers": [_label(c) for c in columns],
        "rows": table_rows,
        "chosen": chosen,
        "served": version.served_variant,
        "extra": [
            (_label(str(k)), _fmt(_reasons_translated(str(k), v)))
            for k, v in report.items()
            if k not in ("variants",)
        ],
        "chart": chart,
    }


def kind_section(group: KindVersions, *, admin: bool) -> dict[str, Any]:
    active = group.active
    latest = group.versions[0] if group.versions else None
    # Curves and compression of the serving version; before any promotion, of the newest.
    shown = active or next((v for v in group.versions if v.metrics), None)
    charts = [_history_chart(group)]
    if shown is not None:
        charts.extend(_curve_charts(group.kind, shown))
    compression = compression_section(group.kind, shown)
    if compression["chart"] is not None:
        charts_with_compression = [*charts, compression["chart"]]
    else:
        charts_with_compression = charts
    section: dict[str, Any] = {
        "kind": group.kind,
        "title": kind_title(group.kind),
        "primary_metric": group.primary_metric,
        # "Score (AUC)": the metric's key in words, like every other key on the page.
        "primary_metric_label": _label(group.primary_metric),
        "active_reason": status_reason_text(active.status_reason) if active else "",
        "training_stage": stage_text(group.training.stage)
        if group.training and group.training.stage
        else "",
        "active": active,
        "shown": shown,
        "latest": latest,
        "training": group.training,
        "metrics": _headline_metrics(active, group.primary_metric) if active else [],
        "headline": headline(active, group.primary_metric),
        "top_features": _top_features(shown),
        "versions": _version_rows(group),
        "charts": charts,
        "compression": compression,
        "all_charts": charts_with_compression,
        "versions_url": reverse("api-model-versions", kwargs={"kind": group.kind}),
    }
    if admin:
        section["promotable"] = [v.version for v in group.promotable]
        target = group.rollback_target
        section["rollback_to"] = target.version if target is not None else None
        section["retrain_url"] = reverse("api-model-retrain", kwargs={"kind": group.kind})
        section["promote_url"] = reverse("api-model-promote", kwargs={"kind": group.kind})
        section["rollback_url"] = reverse("api-model-rollback", kwargs={"kind": group.kind})
    return section


def models_page(groups: Sequence[KindVersions], *, admin: bool) -> dict[str, Any]:
    sections = [kind_section(g, admin=admin) for g in groups]
    return {
        "sections": sections,
        "is_admin": admin,
        "chart_data": chart_specs(c for s in sections for c in s["all_charts"]),
        # The stages models.js shows while it follows a run, in the page's language.
        "stage_words": [(key, stage_text(key)) for key in STAGES],
        "status_words": [(key, str(words)) for key, words in STATUSES.items()],
    }


# ---------------------------------------------------------------------------
# The view
# ---------------------------------------------------------------------------


@access.declare(access.PLATFORM_READERS)
@require_GET
@never_cache
@login_required
def models(request: HttpRequest) -> HttpResponse:
    role = access.role_of(request.user)
    base = {"role_label": access.role_label(request.user)}
    if role == access.INSTRUCTOR:
        return render(request, "registry/not_available.html", base, status=403)
    if role not in (access.ADMIN, access.ANALYST):
        raise PermissionDenied("The models page is for platform admins and analysts.")
    context = models_page(versions_for_page(), admin=role == access.ADMIN)
    context.update(base, models_url=reverse("registry:models"))
    return render(request, "registry/models.html", context)
