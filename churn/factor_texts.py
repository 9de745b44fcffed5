"""Top-factor texts in the reader's language.

churn.model cannot import Django, so it describes a factor as a `Phrase` (English
message id(s) and parameters, churn/model/explain.py) beside its English text. Pages
translate the phrase here, at request time, with the catalogue; the JSON API, the CSV
export and the stored `text` stay English (docs/i18n.md: data for tools).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.translation import gettext, ngettext

from churn.model.explain import Phrase


def translate(phrase: Phrase) -> str:
    """`phrase` in the active language (English where the catalogue lacks it)."""
    params = {k: translate(v) if isinstance(v, Phrase) else v for k, v in phrase.params.items()}
    if phrase.plural is None:
        text = gettext(phrase.msgid)
    else:
        text = ngettext(phrase.msgid, phrase.plural, phrase.n)
    return text % params


def factor_text(factor: Phrase | str) -> str:
    """A live factor (a phrase, or a text scored before phrases existed) for a page."""
    return translate(factor) if isinstance(factor, Phrase) else factor


def stored_factor_text(factor: Mapping[str, Any]) -> str:
    """A batch score's factor ({"text", "phrase"?, ...}) for a page; rows written
    before phrases were stored keep their English text."""
    phrase = factor.get("phrase")
    if isinstance(phrase, Mapping):
        try:
            return translate(Phrase.from_json(dict(phrase)))
        except (KeyError, TypeError, ValueError):
            pass  # a malformed row: its English text is still right
    return str(factor.get("text", ""))
