from eduplatform.settings.base import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests enqueue in-process unless a test starts a real worker itself.
CELERY_TASK_ALWAYS_EAGER = True
ARTIFACT_DIR = BASE_DIR / "var" / "test-artifacts"  # noqa: F405

# Lockout bookkeeping off by default (force_login in most tests); the login
# hardening tests switch it on.
AXES_ENABLED = False
CAPTCHA_TEST_MODE = True

# Compression runs in every retrain; tests time its variants briefly.
COMPRESSION_TIMING_SECONDS = 0.3
# Every get_served() asks the cache, so a test sees another process's promotion at once.
SERVING_RECHECK_SECONDS = 0.0
# With DATABASE_REPLICA_URL set (CI), only the replica's own tests read there: elsewhere a
# transactional test would read its fresh rows behind the replication lag.
DATABASE_REPLICA_READS = False
