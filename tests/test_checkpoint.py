"""fastattn.io.checkpoint: model directories (single file or sharded) written by
save_checkpoint and read by Checkpoint, stale layouts, pickle-only weights, mmap=False (broken
indexes and shards: tests/test_malformed_files.py)."""
import json
import mmap

import numpy as np
import pytest

import fastattn
from fastattn.io import (Checkpoint, SafetensorsFile, bf16_to_float32, float32_to_bf16,
                         save_checkpoint, save_safetensors)

from conftest import TINY_GPT2, _owner, random_tensors


# -- model directories ---------------------------------------------------------------------------

@pytest.mark.parametrize("shards", [1, 2, 3, 7])
@pytest.mark.parametrize("dtype", ["F32", "BF16"])
def test_checkpoint_round_trip(tmp_path, rng, shards, dtype):
    tensors = random_tensors(rng)
    save_checkpoint(tmp_path, TINY_GPT2, tensors, dtype=dtype, shards=shards)
    with Checkpoint(tmp_path) as ckpt:
        assert sorted(ckpt.keys()) == sorted(tensors) and len(ckpt) == len(tensors)
        assert len(ckpt.files) == shards
        for name, value in tensors.items():
            expected = value if dtype == "F32" else bf16_to_float32(float32_to_bf16(value))
            np.testing.assert_array_equal(ckpt[name], expected)
            assert ckpt.dtype(name) == dtype and ckpt.shape(name) == value.shape
        assert ckpt.config.n_embd == 8
    if shards > 1:
        index = json.loads((tmp_path / "model.safetensors.index.json").read_text())
        assert set(index["weight_map"].values()) == {
            f"model-{i:05d}-of-{shards:05d}.safetensors" for i in range(1, shards + 1)}
        expected_bytes = sum(v.size for v in tensors.values()) * (4 if dtype == "F32" else 2)
        assert index["metadata"]["total_size"] == expected_bytes
    else:
        with SafetensorsFile(tmp_path / "model.safetensors") as f:
            assert f.metadata == {"format": "pt"}


def test_switching_layout_removes_the_stale_one(tmp_path, rng):
    old, new = random_tensors(rng, 3), random_tensors(rng, 2)
    save_checkpoint(tmp_path, TINY_GPT2, old, shards=3)
    save_checkpoint(tmp_path, TINY_GPT2, new)
    with Checkpoint(tmp_path) as ckpt:
        assert sorted(ckpt) == sorted(new)


def test_single_file_wins_over_an_index_like_transformers(tmp_path, rng):
    sharded, single = random_tensors(rng, 3), random_tensors(rng, 2)
    save_checkpoint(tmp_path / "a", TINY_GPT2, sharded, shards=3)
    save_safetensors(tmp_path / "a" / "model.safetensors", single)
    with Checkpoint(tmp_path / "a") as ckpt:
        assert sorted(ckpt) == sorted(single) and len(ckpt.files) == 1


def test_resaving_loaded_tensors(tmp_path, rng):
    # read-only mapped views are valid writer inputs, and a file may be replaced while mapped
    tensors = random_tensors(rng, 3)
    save_safetensors(tmp_path / "a.safetensors", tensors)
    with SafetensorsFile(tmp_path / "a.safetensors") as f:
        views = {n: f[n] for n in f}
        save_safetensors(tmp_path / "a.safetensors", {n: 2 * v for n, v in views.items()})
        for n, v in tensors.items():
            np.testing.assert_array_equal(views[n], v)  # the old mapping is untouched
    with SafetensorsFile(tmp_path / "a.safetensors") as f:
        for n, v in tensors.items():
            np.testing.assert_array_equal(f[n], 2 * v)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "weights.pth", "last.ckpt"])
def test_pickle_only_directory_is_refused(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x80\x04not really a pickle")
    (tmp_path / "config.json").write_text(json.dumps(TINY_GPT2))
    with pytest.raises(ValueError, match=rf"only pickle weights \({name}\).*arbitrary code"):
        Checkpoint(tmp_path)
    with pytest.raises(ValueError, match="pickle"):
        fastattn.load(tmp_path)


def test_directory_without_weights_or_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        Checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such directory.*nowhere"):
        Checkpoint(tmp_path / "nowhere")
    (tmp_path / "f").write_text("")
    with pytest.raises(NotADirectoryError):
        Checkpoint(tmp_path / "f")


# -- mmap=False ----------------------------------------------------------------------------------

def test_no_mmap_tensors_are_private_read_only_copies(tmp_path, rng):
    tensors = random_tensors(rng, 3)
    save_checkpoint(tmp_path, TINY_GPT2, tensors, shards=2)
    with Checkpoint(tmp_path, mmap=False) as ckpt:
        for name, value in tensors.items():
            array = ckpt[name]
            np.testing.assert_array_equal(array, value)
            assert not isinstance(_owner(array), mmap.mmap)   # held in memory, not mapped
            assert not array.flags.writeable                  # read-only, as mapped views are
    with Checkpoint(tmp_path) as ckpt:
        assert all(isinstance(_owner(ckpt[name]), mmap.mmap) for name in tensors)
