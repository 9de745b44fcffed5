from django.urls import path

from analytics.api import InterventionsView
from analytics.ingest.api import EventsView

urlpatterns = [
    path("events", EventsView.as_view(), name="api-events"),
    path(
        "learners/<str:pseudonym>/interventions",
        InterventionsView.as_view(),
        name="api-learner-interventions",
    ),
]
