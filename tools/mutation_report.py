"""`make mutate`'s summary: mutmut's verdicts per module, the score, the survivors.

mutmut prints one line per mutant ("    module.x_function__mutmut_3: survived"); this
groups them by module. Killed and timed-out mutants count as caught; survived and
"no tests" (no selected test reaches the function) as missed; "not checked" (the run's
time ran out first) is left out of the score and counted apart, so a cut-short run
says so instead of looking better or worse than it is.

Arguments: the run's mutant patterns (`make mutate` passes its MUTANTS); only the mutants
they match are reported, so mutants outside the scope do not show as unrun.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

LINE = re.compile(r"^\s+(?P<name>\S+)__mutmut_\d+: (?P<status>.+)$")
CAUGHT = {"killed", "timeout", "caught by type check", "segfault"}
MISSED = {"survived", "no tests", "suspicious"}


def module_of(name: str) -> str:
    # "eduplatform.ml.train.x_fit" or "...train.xǁTrainConfigǁto_dict": the module is
    # what precedes the mangled function name.
    return re.split(r"\.x[_ǁ]", name, maxsplit=1)[0]


def in_scope(name: str, patterns: list[str]) -> bool:
    return not patterns or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def main(patterns: list[str]) -> int:
    mutmut = Path(sys.executable).with_name("mutmut")
    out = subprocess.run(
        [str(mutmut), "results", "--all", "true"], capture_output=True, text=True, check=True
    ).stdout
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    survivors: list[str] = []
    for line in out.splitlines():
        match = LINE.match(line)
        if match is None:
            continue
        status = match["status"].strip()
        if not in_scope(line.split(":", 1)[0].strip(), patterns):
            continue
        counts[module_of(match["name"])][status] += 1
        if status in MISSED:
            survivors.append(line.strip())
    print(f"{'module':44} {'mutants':>7} {'caught':>7} {'missed':>7} {'unrun':>6} {'score':>6}")
    for module, c in sorted(counts.items()):
        caught = sum(c[s] for s in CAUGHT)
        missed = sum(c[s] for s in MISSED)
        unrun = sum(c.values()) - caught - missed
        score = f"{caught / (caught + missed):.0%}" if caught + missed else "-"
        total = sum(c.values())
        print(f"{module:44} {total:7} {caught:7} {missed:7} {unrun:6} {score:>6}")
    print(f"\nsurvivors ({len(survivors)}; `.venv/bin/mutmut show <name>` prints the diff):")
    for line in survivors:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
