from django.urls import path

from analytics import views

app_name = "analytics"
urlpatterns = [
    path("", views.overview, name="overview"),
    path("courses/<int:course_id>/", views.course_detail, name="course"),
    path("courses/<int:course_id>/export.csv", views.course_export, name="course-export"),
    path("courses/<int:course_id>/segments/", views.course_segments, name="segments"),
    path("learners/<str:pseudonym>/", views.learner_detail, name="learner"),
    path(
        "learners/<str:pseudonym>/interventions/",
        views.learner_intervention_add,
        name="learner-interventions",
    ),
    path("data-quality/", views.data_quality, name="data-quality"),
]
