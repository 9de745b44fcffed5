from django.urls import path

from recommender.api import RecommendationsView

urlpatterns = [
    path(
        "learners/<str:pseudonym>/recommendations",
        RecommendationsView.as_view(),
        name="api-learner-recommendations",
    ),
]
