from django.apps import AppConfig


class ChurnConfig(AppConfig):
    name = "churn"
    default_auto_field = "django.db.models.BigAutoField"
