"""Chart cards and their data tables, shared by every dashboard page.

A chart card is plain JSON (``{"id", "type", "labels", "datasets", ...}``)
drawn by static/js/charts.js, plus what templates/analytics/_chart.html needs
around it (title, summary, empty state). Every chart also gets a data table as
its text alternative, built from the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from django.utils import dateformat
from django.utils.translation import gettext

from eduplatform.core import access


def suppressed_text() -> str:
    """What a suppressed cell reads, in the request's language."""
    return gettext("suppressed (fewer than %(count)d learners)") % {"count": access.MIN_GROUP_SIZE}


def pct(part: float | None, whole: float | None) -> float | None:
    """`part` as a percentage of `whole`, one decimal; None if either is unknown or zero."""
    if part is None or not whole:
        return None
    return round(100.0 * part / whole, 1)


def day_label(day: dt.date) -> str:
    # "1 Nov 2026" in English, like the templates' date format "j M Y" (translated).
    return dateformat.format(day, gettext("j M Y"))


def data_table(
    caption: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]
) -> dict[str, Any]:
    """A chart's data table; a suppressed cell (None) reads as such, not as empty."""
    suppressed = suppressed_text()
    return {
        "caption": caption,
        "headers": list(headers),
        "rows": [[suppressed if cell is None else cell for cell in row] for row in rows],
    }


def chart_card(
    chart_id: str,
    title: str,
    summary: str,
    *,
    kind: str,
    datasets: list[dict[str, Any]],
    table: dict[str, Any],
    empty: bool,
    empty_text: str,
    labels: list[Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """One chart card (templates/analytics/_chart.html): what the template needs (title,
    summary, table) and what JS draws (spec)."""
    return {
        "id": chart_id,
        "title": title,
        "summary": summary,
        "table": table,
        "empty": empty,
        "empty_text": empty_text,
        "spec": {
            "id": chart_id,
            "type": kind,
            "labels": labels or [],
            "datasets": datasets,
            "options": options,
        },
    }


def chart_specs(charts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The JSON handed to the page's script: specs of the charts that have data."""
    return {c["id"]: c["spec"] for c in charts if not c["empty"]}
