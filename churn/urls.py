from django.urls import path

from churn.api import RiskView

urlpatterns = [
    path("learners/<str:pseudonym>/risk", RiskView.as_view(), name="api-learner-risk"),
]
