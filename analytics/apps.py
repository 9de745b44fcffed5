from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analytics import activity_stamps
        from eduplatform.core import authcache

        authcache.connect_signals()
        activity_stamps.connect_signals()
