"""Batch risk scores written by the scoring task and read by dashboards."""

from __future__ import annotations

from django.db import models

from analytics.models import Course, Learner


class RiskScore(models.Model):
    """The latest score of a learner in a course run (one row per pair)."""

    exported_with_learner = True
    export_fields = ("course__code", "scored_at", "as_of", "probability", "band", "factors")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="risk_scores")
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="risk_scores")
    model_version = models.PositiveIntegerField()
    as_of = models.DateField()
    scored_at = models.DateTimeField()
    probability = models.FloatField()
    band = models.CharField(max_length=8)
    # Plain-words top factors: [{"feature": ..., "text": ..., "contribution": ..., "phrase": ...}]
    # ("text" in English; "phrase" the same before translation, churn/factor_texts.py)
    factors = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["course", "learner"], name="risk_score_unique")
        ]
        indexes = [models.Index(fields=["course", "band"], name="risk_course_band_idx")]


class RiskHistory(models.Model):
    """One point per learner, course run and day: the learner page's risk history."""

    exported_with_learner = True
    export_fields = ("course__code", "as_of", "probability", "band")

    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="+")
    learner = models.ForeignKey(Learner, on_delete=models.CASCADE, related_name="risk_history")
    as_of = models.DateField()
    probability = models.FloatField()
    band = models.CharField(max_length=8)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["learner", "course", "as_of"], name="risk_history_unique"
            )
        ]
