"""The models page's headline card: "is it good?" in one line per model (#27 item 4).

Built from what a version stores (metrics, compression report, dates), so every kind gets
one; parts a kind does not store are left out. Example (churn):
"AUC 0.744 on the latest validation runs; tuned HGB 0.731 · calibrated (ECE 0.021) ·
served variant 7.1x smaller, 2.0x faster · trained 7 Dec 2026, 14:00".
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from django.utils import formats
from django.utils.translation import gettext as _

from eduplatform.registry.labels import label
from eduplatform.registry.models import ModelVersion

# Expected calibration error under which the probabilities read as calibrated
CALIBRATED_ECE = 0.05


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(float(value)) else None


def _variant(report: Mapping[str, Any], name: str | None) -> Mapping[str, Any] | None:
    for row in report.get("variants") or []:
        if isinstance(row, Mapping) and row.get("name") == name:
            return row
    return None


def _compression(version: ModelVersion) -> str | None:
    report = version.compression_report or {}
    if not isinstance(report, Mapping) or not version.served_variant:
        return None
    base, served = _variant(report, "fp32"), _variant(report, version.served_variant)
    if base is None or served is None or served is base:
        return None
    size = (_number(base.get("bytes")), _number(served.get("bytes")))
    speed = (_number(base.get("latency_ms_p50")), _number(served.get("latency_ms_p50")))
    parts = []
    if size[0] and size[1]:
        parts.append(_("%(ratio)sx smaller") % {"ratio": f"{size[0] / size[1]:.1f}"})
    if speed[0] and speed[1]:
        parts.append(_("%(ratio)sx faster") % {"ratio": f"{speed[0] / speed[1]:.1f}"})
    if not parts:
        return None
    return _("served variant %(variant)s: %(ratios)s") % {
        "variant": version.served_variant,
        "ratios": ", ".join(parts),
    }


def _bands(metrics: Mapping[str, Any]) -> list[str]:
    """Precision / recall / F1 at each band's threshold (#27 item 4), high then medium:
    churn stores the high band's report as `report`, the medium band's as `report_medium`
    (churn/services.py `band_reports`); versions without the band thresholds get none."""
    thresholds = metrics.get("band_thresholds")
    if not isinstance(thresholds, Mapping):
        return []
    bands = (
        ("report", _("at the high band's threshold (%(threshold)s)"), thresholds.get("high")),
        (
            "report_medium",
            _("at the medium band's threshold (%(threshold)s)"),
            thresholds.get("medium"),
        ),
    )
    out = []
    for key, where, threshold in bands:
        report = metrics.get(key)
        figures = (
            [_number(report.get(k)) for k in ("precision", "recall", "f1")]
            if isinstance(report, Mapping)
            else []
        )
        cut = _number(threshold)
        if cut is None or len(figures) != 3 or None in figures:
            continue
        precision, recall, f1 = (f"{v:.2f}" for v in figures if v is not None)
        out.append(
            _("%(where)s: precision %(precision)s, recall %(recall)s, F1 %(f1)s")
            % {
                "where": where % {"threshold": f"{cut:.2f}"},
                "precision": precision,
                "recall": recall,
                "f1": f1,
            }
        )
    return out


def headline(version: ModelVersion | None, primary: str) -> list[str]:
    """The card's sentences for `version` (the served one), [] without one."""
    if version is None:
        return []
    metrics = version.metrics if isinstance(version.metrics, Mapping) else {}
    out = []
    # churn: the mean over cut-offs is what the peer's figure means too
    score = _number(metrics.get("auc_mean_cutoffs")) or _number(metrics.get("score"))
    if score is not None:
        line = _("%(metric)s %(score)s on the latest validation runs") % {
            "metric": label(primary),
            "score": f"{score:.3f}",
        }
        peer = metrics.get("peer")
        if isinstance(peer, Mapping) and _number(peer.get("score")) is not None:
            line += _("; %(peer)s %(score)s") % {
                "peer": str(peer.get("name", "")),
                "score": f"{float(peer['score']):.3f}",
            }
        out.append(line)
    ece = _number(metrics.get("ece"))
    if ece is not None:
        out.append(
            _("calibrated (ECE %(ece)s)") % {"ece": f"{ece:.3f}"}
            if ece <= CALIBRATED_ECE
            else _("probabilities off by %(ece)s on average (ECE)") % {"ece": f"{ece:.3f}"}
        )
    out.extend(_bands(metrics))
    compression = _compression(version)
    if compression:
        out.append(compression)
    done = version.finished_at
    if done is not None:
        out.append(_("trained %(when)s") % {"when": formats.date_format(done, "DATETIME_FORMAT")})
    return out
