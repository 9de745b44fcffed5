"""Input boundary helpers shared by every API and page: integers from query strings.

Python's ``int()`` and DRF's ``IntegerField`` accept any Unicode decimal digit (Arabic-Indic,
full-width) and surrounding blanks (" 5"); a URL parameter that means a number here
is plain ASCII digits or it is refused.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

# Nine digits fit every id and count column (int4 tops out at 2,147,483,647).
MAX_DIGITS = 9


def ascii_int(raw: Any) -> int | None:
    """The value of a string of 1 to 9 ASCII digits, else None."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    if not isinstance(raw, str) or not (0 < len(raw) <= MAX_DIGITS):
        return None
    if not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw)


class AsciiIntegerField(serializers.IntegerField):
    """An IntegerField that takes ASCII digits only (JSON numbers pass as they are)."""

    default_error_messages = {"invalid": _("Enter a whole number in ASCII digits (0-9).")}

    def to_internal_value(self, data: Any) -> int:
        value = ascii_int(data)
        if value is None:
            self.fail("invalid")
        return super().to_internal_value(value)
