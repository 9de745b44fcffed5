"""The panel slots of the dashboard pages: the extension point for other apps.

Risk (churn) and recommendations (recommender) appear on the course and learner
pages, but analytics never imports those apps. Instead a page has named slots.
An app fills a slot by

1. providing the slot's template (exact names in `SLOTS`), and optionally
2. registering a data function in its ``AppConfig.ready()``::

       from analytics.pages.panels import register_panel_data
       register_panel_data("course_risk", risk_for_learners, csv=risk_csv_cells)

Until the template exists the slot renders analytics' fallback ("no model
yet"). See `PanelSlot` for what each template receives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.translation import gettext_lazy as _

from analytics.models import Course

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PanelSlot:
    """A place on a page that another app renders.

    ``kind == "course_row"``: the template is included once per row of the
    course's at-risk table and must render exactly ``len(headers)`` ``<td>``
    cells. Context: ``course``, ``row`` (dict: learner_id, pseudonym,
    last_active, activity_14d, status) and ``panel`` (the value the data
    function returned for ``row.learner_id``, or None). Data function:
    ``fn(course, learner_ids: list[int]) -> Mapping[int, Any]``, called once
    per page (and per 500 rows of a CSV export): one query, not one per row.
    ``csv(value_or_None) -> Sequence[str]`` gives the ``csv_columns`` cells.

    ``kind == "learner"``: the template is the body of a section on the
    learner page. Context: ``learner``, ``enrollments`` (the learner's
    enrolments in runs the viewer may see, with ``course``) and ``panel``
    (``fn(learner, courses: list[Course]) -> Any``, or None).
    """

    name: str
    kind: str
    template: str
    fallback: str
    title: StrOrPromise
    headers: tuple[StrOrPromise, ...] = ()
    csv_columns: tuple[str, ...] = ()
    # the row order (`register_row_order`) that a click on the first header asks for
    sort: str = ""


SLOTS: dict[str, PanelSlot] = {
    slot.name: slot
    for slot in (
        PanelSlot(
            name="course_risk",
            kind="course_row",
            template="churn/_course_risk_columns.html",
            fallback="analytics/panels/_course_risk_columns.html",
            title=_("Risk"),
            headers=(_("Risk band"), _("Top factors")),
            csv_columns=("risk_band", "top_factors"),
            sort="risk",
        ),
        PanelSlot(
            name="course_next_items",
            kind="course_row",
            template="recommender/_course_next_items_column.html",
            fallback="analytics/panels/_course_next_items_column.html",
            title=_("Recommendations"),
            headers=(_("Recommended next items"),),
            csv_columns=("recommended_next_items",),
        ),
        PanelSlot(
            name="learner_risk",
            kind="learner",
            template="churn/_learner_risk.html",
            fallback="analytics/panels/_learner_risk.html",
            title=_("Dropout risk"),
        ),
        PanelSlot(
            name="learner_recommendations",
            kind="learner",
            template="recommender/_learner_recommendations.html",
            fallback="analytics/panels/_learner_recommendations.html",
            title=_("Recommended next items"),
        ),
    )
}


@dataclass(frozen=True)
class _Provider:
    data: Callable[..., Any]
    csv: Callable[[Any], Sequence[str]] | None


_providers: dict[str, _Provider] = {}


def register_panel_data(
    slot: str,
    data: Callable[..., Any],
    *,
    csv: Callable[[Any], Sequence[str]] | None = None,
) -> None:
    """Register the data function of a slot (call from the owning app's ``ready()``)."""
    if slot not in SLOTS:
        raise KeyError(f"unknown panel slot {slot!r}; known: {', '.join(SLOTS)}")
    _providers[slot] = _Provider(data=data, csv=csv)


def unregister_panel_data(slot: str) -> None:
    _providers.pop(slot, None)


@dataclass(frozen=True)
class RowOrder:
    """An order of the at-risk table that another app knows (risk: churn).

    ``keys(course)`` -> {learner_id: (coarse, fine)}, larger = first when descending, in
    one query; learners without a key sort after every keyed one. ``fine`` orders within
    ``coarse`` only for viewers with ``fine_for(user)`` true; for the others rows with the
    same ``coarse`` keep the table's base order (pseudonym), so a precise figure they may
    not see cannot be read off the row order. ``legend`` says what the order means."""

    label: StrOrPromise
    keys: Callable[[Course], Mapping[int, tuple[float, float]]]
    fine_for: Callable[[Any], bool]
    legend: StrOrPromise = ""
    # one sentence about the whole run from the same keys (risk: the expected share of
    # leavers), shown once above the table
    summary: Callable[[Mapping[int, tuple[float, float]]], str] | None = None


_orders: dict[str, RowOrder] = {}


def register_row_order(
    name: str,
    *,
    label: StrOrPromise,
    keys: Callable[[Course], Mapping[int, tuple[float, float]]],
    fine_for: Callable[[Any], bool],
    legend: StrOrPromise = "",
    summary: Callable[[Mapping[int, tuple[float, float]]], str] | None = None,
) -> None:
    """Register a row order of the at-risk table (call from the owning app's ``ready()``);
    the first registered one is the table's default, riskiest first."""
    _orders[name] = RowOrder(
        label=label, keys=keys, fine_for=fine_for, legend=legend, summary=summary
    )


def unregister_row_order(name: str) -> None:
    _orders.pop(name, None)


def row_orders() -> dict[str, RowOrder]:
    return dict(_orders)


def order_rows(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    course: Course,
    user: Any,
    *,
    descending: bool,
) -> list[Mapping[str, Any]]:
    """`rows` (in the table's base order) in the registered order `name`. A failing key
    function logs and leaves the base order, as a failing panel leaves its slot empty."""
    return ordered(name, rows, course, user, descending=descending)[0]


def order_keys(name: str, course: Course) -> Mapping[int, tuple[float, float]] | None:
    """The registered order's keys of the run (one query), or None when its key function
    fails (logged)."""
    try:
        return _orders[name].keys(course)
    except Exception:
        logger.exception("row order failed order=%s", name)
        return None


def ordered(
    name: str,
    rows: Sequence[Mapping[str, Any]],
    course: Course,
    user: Any,
    *,
    descending: bool,
    keys: Mapping[int, tuple[float, float]] | None = None,
) -> tuple[list[Mapping[str, Any]], str]:
    """(`order_rows`' rows, the order's one-sentence summary of the run or ""). `keys`: the
    order's keys when the caller has read them already (`order_keys`)."""
    order = _orders[name]
    if keys is None:
        keys = order_keys(name, course)
    if keys is None:
        return list(rows), ""
    summary = order.summary(keys) if order.summary is not None and keys else ""
    fine = order.fine_for(user)
    missing = (float("-inf"), float("-inf"))

    def key(row: Mapping[str, Any]) -> tuple[float, float]:
        coarse, detail = keys.get(row["learner_id"], missing)
        value = (coarse, detail if fine else 0.0)
        return value if descending else (-value[0], -value[1])

    keyed = [r for r in rows if r["learner_id"] in keys]
    unkeyed = [r for r in rows if r["learner_id"] not in keys]
    # sorted() is stable: equal keys keep the base order
    return [*sorted(keyed, key=key, reverse=True), *unkeyed], summary


def slot_template(slot: PanelSlot) -> str:
    """The owning app's template if it exists, else analytics' "no model yet" fallback."""
    try:
        get_template(slot.template)
    except TemplateDoesNotExist:
        return slot.fallback
    return slot.template


def panel_data(slot: PanelSlot, *args: Any) -> Any:
    provider = _providers.get(slot.name)
    if provider is None:
        return None
    try:
        return provider.data(*args)
    except Exception:
        # A failing panel must not take the whole dashboard down; the owning
        # app's error is logged (ids only, no learner data) and its slot shows
        # the empty state.
        logger.exception("panel data failed slot=%s", slot.name)
        return None


def course_slots() -> list[PanelSlot]:
    return [s for s in SLOTS.values() if s.kind == "course_row"]


def attach_row_panels(course: Course, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each row a ``panels`` list: (template, value) per course-row slot, in SLOTS order."""
    ids = [r["learner_id"] for r in rows]
    per_slot = []
    for slot in course_slots():
        values = panel_data(slot, course, ids) or {}
        per_slot.append((slot, slot_template(slot), values))
    for row in rows:
        row["panels"] = [
            {"template": template, "value": values.get(row["learner_id"])}
            for _, template, values in per_slot
        ]
    return rows


def csv_cells(slot: PanelSlot, value: Any) -> Sequence[str]:
    """The slot's CSV cells for one row: its provider's, or blanks without one."""
    provider = _providers.get(slot.name)
    if provider is not None and provider.csv is not None:
        return provider.csv(value)
    return ["" for _ in slot.csv_columns]
