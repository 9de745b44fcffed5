"""Model artifacts: tensors (safetensors) plus a JSON config, never pickled modules.

Layout of one artifact file: safetensors with the config JSON stored in its
metadata under "config". Loading therefore runs no code from the file, and the
sha256 of the whole file is checked before a byte of it is parsed.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class ArtifactError(Exception):
    """The artifact is missing, tampered with, or not an artifact."""


@dataclass(frozen=True)
class Artifact:
    tensors: dict[str, torch.Tensor]
    config: dict[str, Any]


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays (ids, thresholds) are common in model configs.
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def artifact_bytes(tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> bytes:
    # Imported here: PyTorch costs a second at import, and not every process
    # that handles artifacts' rows ever writes or reads one.
    from safetensors.torch import save as st_save

    contiguous = {name: t.detach().contiguous().cpu() for name, t in tensors.items()}
    text = json.dumps(config, sort_keys=True, default=_json_default)
    return st_save(contiguous, metadata={"config": text})


# Called with (temporary file, destination) after the temporary file is written and
# fsynced, before the rename; None in production. The crash tests set it to SIGKILL a
# process at exactly that point (tests/ml/test_artifacts.py, tests/registry/).
before_rename: Callable[[Path, Path], None] | None = None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def save_artifact(path: Path, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> str:
    """Write atomically and durably; return the sha256 of the file.

    1. Serialize to bytes in memory (tensors + config metadata).
    2. Write to a temporary file in the same directory and fsync it.
    3. Rename over the destination (atomic on POSIX) and fsync the directory,
       so a crash leaves either the old file or the complete new one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = artifact_bytes(tensors, config)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if before_rename is not None:
            before_rename(Path(tmp), path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return sha256_bytes(data)


def load_artifact(path: Path, expected_sha256: str | None) -> Artifact:
    """Read, verify the checksum (when given), then parse the tensors."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{path}: cannot read ({exc.strerror})") from exc
    if expected_sha256 is not None and sha256_bytes(data) != expected_sha256:
        raise ArtifactError(f"{path}: sha256 mismatch, refusing to load")
    return parse_artifact(data, source=str(path))


def parse_artifact(data: bytes, source: str = "<bytes>") -> Artifact:
    from safetensors.torch import load as st_load

    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + header_len])
        config = json.loads(header.get("__metadata__", {}).get("config", "{}"))
    except Exception as exc:  # safetensors raises several types for garbage input
        raise ArtifactError(f"{source}: not a safetensors artifact") from exc
    return Artifact(tensors=tensors, config=config)
