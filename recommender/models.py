"""Batch recommendations written by the scoring task and read by tables of many learners."""

from __future__ import annotations

from django.db import models

from analytics.models import Course, Learner


class NextItems(models.Model):
    exported_with_learner = True
    export_fields = ("course__code", "scored_at", "items")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="next_items")
    model_version = models.PositiveIntegerField()
    scored_at = models.DateTimeField()
    # [{"item_id": ..., "title": ..., "reason": ...}], best first
    items = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "learner"], name="next_items_unique")
        ]
