"""Run the benchmarks and write docs/benchmarks.md.

python -m bench.run --quick            # smaller data, minutes
python -m bench.run --full             # everything on the full shared OULAD
python -m bench.run --quick --only ingestion,serving
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bench.common import ROOT, render_markdown
from bench.tools import missing

SECTIONS = [
    "ingestion",
    "partitions",
    "features",
    "quality",
    "churn_ceiling",
    "compression",
    "retraining",
    "serving",
    "scale",
    "parallel",
    "fuzz",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--full", action="store_true")
    parser.add_argument("--only", default="", help="comma-separated sections")
    args = parser.parse_args()
    wanted = [s for s in args.only.split(",") if s] or SECTIONS
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        print(f"bench: unknown section(s) {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
        return 2
    # Everything the sections need, before the first one runs: one line naming what is missing.
    problems = missing(wanted)
    if problems:
        print(f"bench: missing {'; '.join(problems)}", file=sys.stderr)
        return 2
    for name in wanted:
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError:
            print(f"bench: {name}: not written yet, skipped", file=sys.stderr)
            continue
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        result = module.run(full=args.full)
        for section in result if isinstance(result, list) else [result]:
            section.save()
    (ROOT / "docs" / "benchmarks.md").write_text(render_markdown())
    print("bench: wrote docs/benchmarks.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
