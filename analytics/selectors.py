"""Reads of learner-behaviour data."""

from __future__ import annotations

from collections import defaultdict

from analytics.models import ContentItem


def item_courses_by_iri(external_ids: set[str]) -> dict[str, str]:
    """Course IRI of each known activity id that belongs to exactly one course with an IRI."""
    if not external_ids:
        return {}
    courses: dict[str, set[str]] = defaultdict(set)
    rows = ContentItem.objects.filter(
        external_id__in=external_ids, course__iri__isnull=False
    ).values_list("external_id", "course__iri")
    for external_id, iri in rows:
        courses[external_id].add(iri)
    return {ext: next(iter(iris)) for ext, iris in courses.items() if len(iris) == 1}
