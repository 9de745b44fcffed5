"""The Simplified Chinese catalogue: complete, not fuzzy, compiled, and covering the templates.

locale/zh_Hans/LC_MESSAGES/django.po is the source; django.mo beside it is compiled from it
and committed (`manage.py compilemessages`). No polib here: a small reader of the .po format
as makemessages writes it, and Python's own gettext for the .mo.
"""

from __future__ import annotations

import ast
import gettext
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")
TEMPLATES = ROOT / "templates"
# Templates that only wrap a third party's page (Swagger UI, Redoc) and show no text of ours.
NO_TEXT_TEMPLATES = {"api_docs/swagger_ui.html", "api_docs/redoc.html"}


@dataclass
class Entry:
    msgid: str = ""
    msgid_plural: str | None = None
    msgctxt: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    obsolete: bool = False


def read_po(path: Path) -> list[Entry]:
    """The entries of a .po file (header included, msgid "")."""
    entries: list[Entry] = []
    entry: Entry | None = None
    target: tuple[str, int] | None = None

    def finish() -> None:
        nonlocal entry
        if entry is not None and target is not None:
            entries.append(entry)
        entry = None

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            target = None
            continue
        if entry is None:
            entry = Entry()
        if line.startswith("#~"):
            entry.obsolete = True
            continue
        if line.startswith("#,"):
            entry.flags.update(flag.strip() for flag in line[2:].split(","))
            continue
        if line.startswith("#"):
            continue
        if line.startswith('"'):
            assert target is not None, f"continuation without a keyword: {raw!r}"
            value = ast.literal_eval(line)
        else:
            keyword, _, rest = line.partition(" ")
            value = ast.literal_eval(rest)
            if keyword.startswith("msgstr["):
                target = ("msgstr", int(keyword[len("msgstr[") : -1]))
            elif keyword == "msgstr":
                target = ("msgstr", 0)
            else:
                target = (keyword, 0)
            if target[0] == "msgstr":
                entry.msgstr[target[1]] = ""
            else:
                setattr(entry, keyword, "")
        if target[0] == "msgstr":
            entry.msgstr[target[1]] += value
        else:
            setattr(entry, target[0], getattr(entry, target[0]) + value)
    finish()
    return entries


def messages() -> list[Entry]:
    return [e for e in read_po(PO) if e.msgid and not e.obsolete]


def test_settings_offer_english_and_simplified_chinese() -> None:
    assert [code for code, _ in settings.LANGUAGES] == ["en-gb", "zh-hans"]
    assert Path(settings.LOCALE_PATHS[0]) == ROOT / "locale"
    middleware = settings.MIDDLEWARE
    locale = middleware.index("django.middleware.locale.LocaleMiddleware")
    assert middleware.index("django.contrib.sessions.middleware.SessionMiddleware") < locale
    assert locale < middleware.index("django.middleware.common.CommonMiddleware")


def test_every_message_has_a_chinese_translation() -> None:
    entries = messages()
    assert len(entries) > 300
    untranslated = [e.msgid for e in entries if not all(e.msgstr.values()) or not e.msgstr]
    fuzzy = [e.msgid for e in entries if "fuzzy" in e.flags]
    assert not untranslated, f"no zh-hans translation: {untranslated}"
    assert not fuzzy, f"fuzzy (unchecked) translations: {fuzzy}"
    header = next(e for e in read_po(PO) if not e.msgid)
    assert "fuzzy" not in header.flags
    assert "nplurals=1; plural=0;" in header.msgstr[0]


def test_translations_keep_their_placeholders() -> None:
    placeholder = re.compile(r"%\([a-z_]+\)(?:\.\d+)?[sdf]|<[^>]+>")
    for e in messages():
        expected = sorted(placeholder.findall(e.msgid))
        for text in e.msgstr.values():
            assert sorted(placeholder.findall(text)) == expected, e.msgid


def test_compiled_catalogue_matches_the_po() -> None:
    """django.mo is committed: it must hold exactly what django.po says (run compilemessages)."""
    with MO.open("rb") as fh:
        catalogue = gettext.GNUTranslations(fh)
    stale = []
    for e in messages():
        if e.msgid_plural is None and e.msgctxt is None:
            got = catalogue.gettext(e.msgid)
        elif e.msgid_plural is None:
            got = catalogue.pgettext(e.msgctxt, e.msgid)
        elif e.msgctxt is None:
            got = catalogue.ngettext(e.msgid, e.msgid_plural, 2)
        else:
            got = catalogue.npgettext(e.msgctxt, e.msgid, e.msgid_plural, 2)
        if got != e.msgstr[0]:
            stale.append(e.msgid)
    assert not stale, f"django.mo is older than django.po (compilemessages): {stale}"


def _template_literals(text: str) -> set[str]:
    """The msgids a template marks with a plain string: {% translate "..." %} and _("...")."""
    found = set(re.findall(r"""{%\s*translate\s+"([^"]+)"(?!\s+context)""", text))
    found |= set(re.findall(r"""{%\s*translate\s+'([^']+)'(?!\s+context)""", text))
    found |= set(re.findall(r"""\b_\("([^"]+)"\)""", text))
    return found


@pytest.mark.parametrize(
    "template",
    sorted(str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")),
)
def test_template_is_marked_and_its_strings_translated(template: str) -> None:
    text = (TEMPLATES / template).read_text(encoding="utf-8")
    if template in NO_TEXT_TEMPLATES:
        return
    assert "{% load" in text and re.search(r"{%\s*load\s[^%]*\bi18n\b", text), (
        f"{template} does not load i18n"
    )
    known = {e.msgid for e in messages()}
    # makemessages doubles a template literal's percent signs (the tag does the same at run time).
    missing = sorted(lit for lit in _template_literals(text) if lit.replace("%", "%%") not in known)
    assert not missing, f"{template}: not in django.po (makemessages): {missing}"


# Calls that mark a message in Python, and the argument holding the msgid (and plural).
GETTEXT_CALLS = {
    "_": (0, None),
    "gettext": (0, None),
    "gettext_lazy": (0, None),
    "gettext_noop": (0, None),
    "ngettext": (0, 1),
    "ngettext_lazy": (0, 1),
    "pgettext": (1, None),
    "pgettext_lazy": (1, None),
    "npgettext": (1, 2),
    "npgettext_lazy": (1, 2),
}
PYTHON_SOURCES = ("analytics", "churn", "recommender", "eduplatform")


def _python_messages(path: Path) -> set[str]:
    """The literal msgids (and plurals) that a Python file marks, as makemessages finds them."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name not in GETTEXT_CALLS:
            continue
        for index in GETTEXT_CALLS[name]:
            if index is not None and len(node.args) > index:
                arg = node.args[index]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.add(arg.value)
    return found


def test_every_message_marked_in_python_is_in_the_catalogue() -> None:
    """A string marked in Python but missing from django.po (makemessages not re-run) shows in
    English on every Chinese page; the entry tests above cannot see an entry that is not there."""
    known = {e.msgid for e in messages()} | {e.msgid_plural for e in messages() if e.msgid_plural}
    missing = {}
    for package in PYTHON_SOURCES:
        for path in sorted((ROOT / package).rglob("*.py")):
            lost = _python_messages(path) - known - {""}
            if lost:
                missing[str(path.relative_to(ROOT))] = sorted(lost)
    assert not missing, f"marked but not in django.po (run makemessages, translate): {missing}"
