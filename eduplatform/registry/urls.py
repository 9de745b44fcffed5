from django.urls import path

from eduplatform.registry.api import PromoteView, RetrainView, RollbackView, VersionsView

urlpatterns = [
    path("models/<str:kind>/versions", VersionsView.as_view(), name="api-model-versions"),
    path("models/<str:kind>/retrain", RetrainView.as_view(), name="api-model-retrain"),
    path("models/<str:kind>/promote", PromoteView.as_view(), name="api-model-promote"),
    path("models/<str:kind>/rollback", RollbackView.as_view(), name="api-model-rollback"),
]
