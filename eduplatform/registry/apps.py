from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_schedules(sender: Any, **kwargs: Any) -> None:
    from eduplatform.registry.beat import schedules_sync

    schedules_sync()


class RegistryConfig(AppConfig):
    name = "eduplatform.registry"
    label = "registry"
    verbose_name = "Model registry"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # PyTorch is not imported here: the model kinds load it (and set
        # TORCH_THREADS) when a model is first asked for (registry/kinds.py).
        post_migrate.connect(_sync_schedules, sender=self)
