from django.urls import path

from analytics.api import EventsView

urlpatterns = [
    path("events", EventsView.as_view(), name="api-events"),
]
