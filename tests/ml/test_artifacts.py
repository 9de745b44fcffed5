import os
import pickle

import pytest
import torch

from eduplatform.ml.artifacts import ArtifactError, load_artifact, save_artifact, sha256_bytes


def test_round_trip_and_checksum(tmp_path):
    path = tmp_path / "m.safetensors"
    tensors = {
        "w": torch.arange(6, dtype=torch.float32).reshape(2, 3),
        "q": torch.tensor([1], dtype=torch.int8),
    }
    digest = save_artifact(path, tensors, {"kind": "test", "dims": [2, 3]})
    loaded = load_artifact(path, digest)
    assert loaded.config == {"kind": "test", "dims": [2, 3]}
    assert torch.equal(loaded.tensors["w"], tensors["w"])
    assert loaded.tensors["q"].dtype == torch.int8
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away


def test_tampered_file_is_refused(tmp_path):
    path = tmp_path / "m.safetensors"
    digest = save_artifact(path, {"w": torch.ones(3)}, {})
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_artifact(path, digest)


class _Payload:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


# torch warns that the payload's pickle protocol (4) is not its own default (2): expected
# for a hostile file written by plain pickle, and not what the test is about.
@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    """A pickle smuggled in as an artifact (even with a matching checksum) is not executed."""
    marker = tmp_path / "pwned"
    payload = _Payload()
    payload.marker = marker
    evil = pickle.dumps({"w": payload})
    path = tmp_path / "evil.safetensors"
    path.write_bytes(evil)
    with pytest.raises(ArtifactError, match="not a safetensors artifact"):
        load_artifact(path, sha256_bytes(evil))
    assert not marker.exists()
    # torch's loader with weights_only=True (for any .pt file) refuses it too.
    pt = tmp_path / "evil.pt"
    pt.write_bytes(evil)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(pt, weights_only=True)
    assert not marker.exists()


# A child that overwrites an artifact and reports when its temporary file is complete,
# then waits to be killed: the parent SIGKILLs it between the write and the rename.
_WRITER = """
import sys, time
from pathlib import Path
import torch
from eduplatform.ml import artifacts

def stop(tmp, dest):
    print(tmp, flush=True)
    time.sleep(120)

artifacts.before_rename = stop
artifacts.save_artifact(Path(sys.argv[1]), {"w": torch.full((4096,), 2.0)}, {"v": 2})
print("renamed", flush=True)
"""


def test_kill_between_write_and_rename_leaves_the_old_artifact(tmp_path):
    """#30: SIGKILL after the new bytes are written, before the rename: the destination
    still holds the old, verifiable artifact and no other visible file is there. Killed
    mutant: writing straight to the destination (no temporary file) leaves the new bytes
    there, so the old checksum no longer matches."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    path = tmp_path / "m.safetensors"
    old_digest = save_artifact(path, {"w": torch.ones(4096)}, {"v": 1})
    old_bytes = path.read_bytes()
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        tmp = Path(child.stdout.readline().strip())  # blocks until the hook is reached
        assert tmp.parent == tmp_path and tmp.stat().st_size > 4096 * 4  # fully written
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert path.read_bytes() == old_bytes
    loaded = load_artifact(path, old_digest)
    assert loaded.config == {"v": 1} and torch.equal(loaded.tensors["w"], torch.ones(4096))
    # The only non-hidden file is the old artifact; the orphan is a dot-file no row names.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [path.name]
