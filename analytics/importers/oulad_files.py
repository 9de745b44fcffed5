"""Reading OULAD's studentVle files (the clicks, by far the largest table) per course run.

Arrow's CSV reader with typed columns is the fast path; anything it rejects is
re-read by the pandas reader of eduplatform.ml.datasets.oulad, which words the
error. The small tables are read and validated by that module too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from eduplatform.ml.datasets.oulad import VleChunk, course_key, course_keys, vle_files

VLE_TYPES = {
    "code_module": pa.dictionary(pa.int32(), pa.string()),
    "code_presentation": pa.dictionary(pa.int32(), pa.string()),
    "id_student": pa.int64(),
    "id_site": pa.int64(),
    "date": pa.int32(),
    "sum_click": pa.int32(),
}


def vle_file_chunks(path: Path, key: str, wanted: set[str]) -> list[VleChunk]:
    """One studentVle file's rows per course run, parsed by Arrow with typed columns.

    Anything Arrow rejects (a bad number, an empty cell, a corrupt gzip
    stream, a missing column) is re-read by the pandas reader of
    eduplatform.ml.datasets.oulad, which words the one-line error (or accepts what
    only Arrow's stricter parser refused).
    """
    try:
        table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(column_types=VLE_TYPES))
        if any(name not in table.column_names for name in VLE_TYPES) or any(
            table[name].null_count for name in ("id_student", "id_site", "date", "sum_click")
        ):
            raise ValueError("needs the careful reader")
    except (pa.ArrowException, ValueError, OSError, EOFError):
        return vle_file_chunks_careful(path, wanted)
    module, presentation = table["code_module"], table["code_presentation"]
    modules = pc.unique(module).cast(pa.string()).to_pylist()
    presentations = pc.unique(presentation).cast(pa.string()).to_pylist()
    keys: dict[str, pa.ChunkedArray | None]
    if len(modules) == 1 and len(presentations) == 1:
        keys = {course_key(modules[0], presentations[0]): None}
    else:
        joined = pc.binary_join_element_wise(
            pc.cast(module, pa.string()), pc.cast(presentation, pa.string()), "_"
        )
        keys = {k: joined for k in pc.unique(joined).to_pylist()}
    chunks = []
    for course_id, joined in sorted(keys.items()):
        if course_id not in wanted:
            continue
        part = table if joined is None else table.filter(pc.equal(joined, course_id))
        chunks.append(
            VleChunk(
                course_id=course_id,
                rows=pd.DataFrame(
                    {
                        "learner_id": part["id_student"].to_numpy(),
                        "item_id": part["id_site"].to_numpy(),
                        "day": part["date"].to_numpy(),
                        "clicks": part["sum_click"].to_numpy(),
                    }
                ),
            )
        )
    return chunks


def vle_file_chunks_careful(path: Path, wanted: set[str]) -> list[VleChunk]:
    """The reading of eduplatform.ml.datasets.oulad.iter_student_vle, for one file."""
    from eduplatform.ml.datasets.oulad import read_table, require_numeric

    frame = read_table(
        path,
        "studentVle",
        dtype={"code_module": "string", "code_presentation": "string"},
        engine="pyarrow",
    )
    require_numeric(frame, path, ["id_student", "id_site", "date", "sum_click"], nullable=False)
    keys = course_keys(frame)
    return [
        VleChunk(
            course_id=str(course_id),
            rows=pd.DataFrame(
                {
                    "learner_id": part["id_student"].to_numpy(np.int64),
                    "item_id": part["id_site"].to_numpy(np.int64),
                    "day": part["date"].to_numpy(np.int32),
                    "clicks": part["sum_click"].to_numpy(np.int32),
                }
            ),
        )
        for course_id, part in frame.groupby(keys, sort=True)
        if course_id in wanted
    ]


def oulad_chunks(folder: Path, keys: set[str]) -> Iterator[VleChunk]:
    """The click rows of the runs `keys` from an OULAD folder, file by file."""
    for key, path in vle_files(folder):
        if key != "*" and key not in keys:
            continue
        yield from vle_file_chunks(path, key, keys)
