from eduplatform.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests enqueue in-process unless a test starts a real worker itself.
CELERY_TASK_ALWAYS_EAGER = True
ARTIFACT_DIR = BASE_DIR / "var" / "test-artifacts"  # noqa: F405
