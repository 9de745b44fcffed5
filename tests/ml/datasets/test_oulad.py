"""The OULAD folder reader: the studentVle layouts it accepts read the same data."""

from __future__ import annotations

import csv
import gzip
import shutil
from pathlib import Path

import pandas as pd
import pytest

from eduplatform.ml.data import LearningData
from eduplatform.ml.datasets.oulad import OuladFormatError, load_oulad, vle_files


def single_file_folder(source: Path, target: Path, *, gzipped: bool) -> Path:
    """`source` with its per-run click files joined into one studentVle.csv[.gz], written
    the way OU distributes the file (every field of the text columns quoted, CRLF)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("studentVle"))
    rows = pd.concat(
        [pd.read_csv(path) for path in sorted((source / "studentVle").glob("*.csv.gz"))],
        ignore_index=True,
    )
    text = rows.to_csv(index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
    if gzipped:
        with gzip.open(target / "studentVle.csv.gz", "wt", newline="") as handle:
            handle.write(text)
    else:
        (target / "studentVle.csv").write_text(text, newline="")
    return target


def assert_same_data(a: LearningData, b: LearningData) -> None:
    for name in LearningData.frame_names():
        pd.testing.assert_frame_equal(
            getattr(a, name).reset_index(drop=True), getattr(b, name).reset_index(drop=True)
        )


@pytest.mark.parametrize("gzipped", [False, True])
def test_one_click_file_reads_as_the_per_run_files(oulad_slice, tmp_path, gzipped):
    folder = single_file_folder(oulad_slice, tmp_path / "one", gzipped=gzipped)
    name = "studentVle.csv.gz" if gzipped else "studentVle.csv"
    assert vle_files(folder) == [("*", folder / name)]
    per_run = load_oulad(oulad_slice)
    assert len(per_run.item_activity) > 0
    assert_same_data(load_oulad(folder), per_run)


def test_per_run_files_are_found_by_name(oulad_slice):
    assert [key for key, _ in vle_files(oulad_slice)] == ["AAA_2013J", "GGG_2014B"]


def test_a_folder_without_click_files_is_a_one_line_error(oulad_slice, tmp_path):
    folder = tmp_path / "none"
    shutil.copytree(oulad_slice, folder, ignore=shutil.ignore_patterns("studentVle"))
    with pytest.raises(OuladFormatError, match=r"no studentVle\.csv\[\.gz\] nor") as raised:
        load_oulad(folder)
    assert "\n" not in str(raised.value)
