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
        import torch
        from django.conf import settings

        post_migrate.connect(_sync_schedules, sender=self)
        # Small networks at batch 1: extra intra-op threads only add overhead,
        # and web workers already run one request per core.
        torch.set_num_threads(settings.TORCH_THREADS)
