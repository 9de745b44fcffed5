"""Copy the rows of some presentations of an OULAD folder into a new folder (for the
recommender's history folds: `--history` earlier presentations, `--data` later ones).

    python -m bench.recommender_subset SRC DEST 2013B 2013J
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pandas as pd

PER_RUN = [
    "courses.csv",
    "assessments.csv",
    "studentInfo.csv",
    "studentRegistration.csv",
    "vle.csv",
]


def subset(src: Path, dest: Path, presentations: list[str]) -> None:
    if dest.resolve().is_relative_to(src.resolve()):
        raise SystemExit("DEST must not be inside SRC")
    dest.mkdir(parents=True, exist_ok=False)
    (dest / "studentVle").mkdir()
    keep = set(presentations)
    ids: set[int] = set()
    for name in PER_RUN:
        frame = pd.read_csv(src / name, dtype=str, keep_default_na=False)
        frame = frame[frame["code_presentation"].isin(keep)]
        if name == "assessments.csv":
            ids = set(frame["id_assessment"].astype(int))
        frame.to_csv(dest / name, index=False)
    sa = pd.read_csv(src / "studentAssessment.csv", dtype=str, keep_default_na=False)
    sa[sa["id_assessment"].astype(int).isin(ids)].to_csv(
        dest / "studentAssessment.csv", index=False
    )
    for path in sorted((src / "studentVle").iterdir()):
        if any(path.name.endswith(f"_{p}.csv.gz") for p in keep):
            shutil.copy(path, dest / "studentVle" / path.name)


if __name__ == "__main__":
    if len(sys.argv) < 4:
        raise SystemExit(__doc__)
    subset(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
