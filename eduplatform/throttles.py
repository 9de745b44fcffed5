"""API rate limits per token, counted in the shared cache (Redis in production).

`TokenRateThrottle` caps requests per token per minute for every API view;
`PredictionBudgetThrottle` adds an hourly query budget on the prediction
endpoints, which slows down anyone trying to reconstruct a model from its
answers. Both answer 429 with Retry-After (DRF computes it from the window).
If the cache is unreachable they let the request through: predictions keep
being served from memory while Redis is down, and the outage is logged.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class _FailOpen(SimpleRateThrottle):
    def allow_request(self, request: Request, view: Any) -> bool:
        try:
            return super().allow_request(request, view)
        except Exception:
            logger.warning("throttle: cache unavailable, request not counted")
            return True

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        token = getattr(request, "auth", None)
        key = getattr(token, "key", None)
        if key:
            # Hash so raw tokens never sit in the cache's key space.
            ident = "t:" + hashlib.sha256(key.encode()).hexdigest()[:32]
        elif request.user and request.user.is_authenticated:
            ident = f"u:{request.user.pk}"
        else:
            ident = "ip:" + (self.get_ident(request) or "unknown")
        return self.cache_format % {"scope": self.scope, "ident": ident}


class TokenRateThrottle(_FailOpen):
    scope = "token"


class IngestRateThrottle(_FailOpen):
    scope = "ingest"


class PredictionBudgetThrottle(_FailOpen):
    scope = "prediction_budget"
