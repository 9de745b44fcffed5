"""Stored English reasons shown on the models page in the reader's language.

A version's ``status_reason`` ("gate: 0.7100 is worse than ...", "worker lost: ...") and the
compression policy's ``reason`` (written by the Django-free kit, eduplatform/ml/compress/)
are stored as English sentences, so the API, the logs and rows written before this table
keep one wording. The page recognises their fixed shapes here and words them again in the
active language, with the stored numbers and names as parameters; a sentence it does not
know (an exception's message) is shown as stored.
"""

from __future__ import annotations

import re

from django.utils.functional import Promise
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

# Each pattern matches the whole stored sentence; its named groups fill the translation.
Rule = tuple[re.Pattern[str], Promise]

STATUS_REASONS: list[Rule] = [
    # eduplatform/registry/services.py: model_version_train's gate.
    (
        re.compile(
            r"gate: (?P<score>\S+) is worse than the active model's (?P<champion>\S+) "
            r"by more than (?P<tolerance>\S+)"
        ),
        _(
            "gate: %(score)s is worse than the active model's %(champion)s "
            "by more than %(tolerance)s"
        ),
    ),
    # services.runs_reclaim_lost (WORKER_LOST).
    (
        re.compile(r"worker lost: no heartbeat for (?P<seconds>\S+) s"),
        _("worker lost: no heartbeat for %(seconds)s s"),
    ),
    # services._abandon_stale_runs and tasks.retrain_model's soft time limit.
    (
        re.compile(r"abandoned: no worker finished it in time"),
        _("abandoned: no worker finished it in time"),
    ),
    (re.compile(r"time limit exceeded"), _("time limit exceeded")),
    # TrainingRejected by a kind (churn/services.py, recommender/services.py) or the registry.
    (
        re.compile(r"not enough labelled learners in at least two course runs yet"),
        _("not enough labelled learners in at least two course runs yet"),
    ),
    (re.compile(r"no course run has started yet"), _("no course run has started yet")),
    (re.compile(r"no item clicks yet"), _("no item clicks yet")),
    (
        re.compile(r"nothing to train the ranker on yet \((?P<detail>.*)\)"),
        _("nothing to train the ranker on yet (%(detail)s)"),
    ),
    (
        re.compile(r"serve_variant (?P<variant>.+) was not built \(built: (?P<built>.*)\)"),
        _("serve_variant %(variant)s was not built (built: %(built)s)"),
    ),
]

# eduplatform/ml/compress/pipeline.py: select_variant's "why", before the figures.
_WHY: list[Rule] = [
    (
        re.compile(r"smallest qualifying \((?P<names>.*)\), then fastest"),
        _("smallest qualifying (%(names)s), then fastest"),
    ),
    (re.compile(r"fastest qualifying at batch 256"), _("fastest qualifying at batch 256")),
    (
        re.compile(r"best size x speed score among qualifying variants"),
        _("best size x speed score among qualifying variants"),
    ),
    # CompressionResult.force callers: registry/compression.py and compression_report.
    (
        re.compile(r"(?P<variant>\S+) requested for this run"),
        _("%(variant)s requested for this run"),
    ),
    (re.compile(r"forced by --serve (?P<variant>\S+)"), _("forced by --serve %(variant)s")),
]
_CHOSEN = re.compile(
    r"(?P<why>.+): (?P<ratio>\S+)x smaller, (?P<b1>\S+)x / (?P<b256>\S+)x as fast at "
    r"batch 1 / 256, quality loss (?P<loss>\S+) \(tolerance (?P<tolerance>\S+?)"
    r"(?P<relative> relative)?\)"
)
_NONE_ELIGIBLE = re.compile(r"no variant within tolerance \((?P<why>.*)\); serving fp32")
_FORCED = re.compile(r"(?P<why>.+); the policy alone would serve (?P<chosen>\S+)")
# One variant's failure in the no-variant sentence: "int8: quality and latency".
_FAILED = re.compile(r"(?P<variant>\S+): (?P<what>quality|latency|quality and latency)")
_FAILURES = {
    "quality": _("%(variant)s: quality"),
    "latency": _("%(variant)s: latency"),
    "quality and latency": _("%(variant)s: quality and latency"),
}


# A training run's stage as the kinds and the registry report it (context.progress("train",
# ...) in churn/services.py, recommender/services.py, registry/services.py), and the last
# stage models.js shows when a run ends.
STAGES: dict[str, Promise] = {
    "features": pgettext_lazy("training stage", "features"),
    "validate": pgettext_lazy("training stage", "validate"),
    "train": pgettext_lazy("training stage", "train"),
    "compress": pgettext_lazy("training stage", "compress"),
    "evaluate": pgettext_lazy("training stage", "evaluate"),
    "register": pgettext_lazy("training stage", "register"),
    "done": pgettext_lazy("training stage", "done"),
    "failed": pgettext_lazy("training stage", "failed"),
}


# A version's status, as registry/_status.html words it on the page (for models.js).
STATUSES: dict[str, Promise] = {
    "training": pgettext_lazy("model status", "training"),
    "candidate": pgettext_lazy("model status", "candidate"),
    "active": pgettext_lazy("model status", "active"),
    "retired": pgettext_lazy("model status", "retired"),
    "failed": pgettext_lazy("model status", "failed"),
}


def stage_text(stage: str) -> str:
    """A training stage in the active language (as stored if unknown)."""
    known = STAGES.get(stage)
    return str(known) if known is not None else stage


def _by_rules(text: str, rules: list[Rule]) -> str | None:
    for pattern, message in rules:
        match = pattern.fullmatch(text)
        if match is not None:
            return str(message) % match.groupdict()
    return None


def status_reason_text(text: str) -> str:
    """A version's stored status reason in the active language (as stored if unknown)."""
    return _by_rules(text, STATUS_REASONS) or text


def _failure(part: str) -> str:
    match = _FAILED.fullmatch(part)
    if match is None:
        return gettext("none built") if part == "none built" else part
    return str(_FAILURES[match["what"]]) % {"variant": match["variant"]}


def compression_reason_text(text: str) -> str:
    """The compression policy's stored reason in the active language (as stored if unknown)."""
    forced = _FORCED.fullmatch(text)
    if forced is not None:
        return gettext("%(why)s; the policy alone would serve %(chosen)s") % {
            "why": _by_rules(forced["why"], _WHY) or forced["why"],
            "chosen": forced["chosen"],
        }
    none = _NONE_ELIGIBLE.fullmatch(text)
    if none is not None:
        parts = "; ".join(_failure(p) for p in none["why"].split("; "))
        return gettext("no variant within tolerance (%(why)s); serving fp32") % {"why": parts}
    chosen = _CHOSEN.fullmatch(text)
    if chosen is not None:
        why = _by_rules(chosen["why"], _WHY) or chosen["why"]
        words = (
            gettext("tolerance %(tolerance)s relative")
            if chosen["relative"]
            else gettext("tolerance %(tolerance)s")
        ) % {"tolerance": chosen["tolerance"]}
        return gettext(
            "%(why)s: %(ratio)sx smaller, %(b1)sx / %(b256)sx as fast at batch 1 / 256, "
            "quality loss %(loss)s (%(tolerance)s)"
        ) % {**chosen.groupdict(), "why": why, "tolerance": words}
    return _by_rules(text, _WHY) or text
