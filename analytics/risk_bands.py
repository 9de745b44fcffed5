"""Past risk bands, lent to analytics by the app that scores learners (churn) (#27 item 5).

The intervention log stores a learner's band on the day of an action, and the course
page's outcome card compares learners flagged at a past day; analytics never imports
churn, so churn registers the read in its ``AppConfig.ready()``::

    from analytics.risk_bands import register_band_history
    register_band_history(flagged="high", bands_on=bands_on)

``bands_on(course, day, learner_ids)`` -> {learner_id: band}: each learner's band in
the run on ``day`` (their latest batch score on or before it), in one query; learners
not scored by then are absent; ``learner_ids=None`` reads the whole run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from analytics.models import Course

BandsOn = Callable[[Course, dt.date, Collection[int] | None], Mapping[int, str]]


@dataclass(frozen=True)
class BandHistory:
    # the band the outcome card counts as "flagged at risk"
    flagged: str
    bands_on: BandsOn


_history: list[BandHistory] = []


def register_band_history(*, flagged: str, bands_on: BandsOn) -> None:
    _history[:] = [BandHistory(flagged=flagged, bands_on=bands_on)]


def unregister_band_history() -> None:
    _history.clear()


def band_history() -> BandHistory | None:
    """The registered reader, or None when no app scores learners."""
    return _history[0] if _history else None
