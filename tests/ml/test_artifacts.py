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
