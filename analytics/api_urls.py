from django.urls import path

from analytics.ingest.api import EventsView

urlpatterns = [
    path("events", EventsView.as_view(), name="api-events"),
]
