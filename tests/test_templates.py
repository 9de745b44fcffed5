"""Template hygiene that Django does not check for us."""

from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def test_no_multiline_hash_comments():
    """`{# ... #}` is single-line only: spread over lines it renders as page text
    (use {% comment %} ... {% endcomment %})."""
    bad = [
        f"{path.relative_to(TEMPLATES)}:{number}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if line.count("{#") > line.count("#}")
    ]
    assert bad == []
