"""HTML pages of the model registry (the JSON API lives in urls.py under /api/v1/)."""

from django.urls import path

from eduplatform.registry import views

app_name = "registry"
urlpatterns = [
    path("models/", views.models, name="models"),
]
