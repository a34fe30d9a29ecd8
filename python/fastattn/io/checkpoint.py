"""A Hugging Face model directory's weights as one mapping name -> float32 ndarray.

Layouts, as `save_pretrained` writes them:

    model.safetensors                    one file
    model.safetensors.index.json         {"metadata": {...}, "weight_map": {name: shard file}}
    model-00001-of-00002.safetensors ...  the shards it names

(model.safetensors wins when both are there, as in transformers.)

Every file is opened (memory-mapped, or read into memory with mmap=False; header validated)
and every index entry checked against its shard when the Checkpoint is created, so a broken
directory fails at once, not halfway through building a model. A tensor held by two shards is
refused (which copy the model should get is a guess). Pickle checkpoints (pytorch_model.bin,
*.pt, *.pth, *.ckpt) are refused: unpickling runs arbitrary code from the file.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping

import numpy as np

from .json_fields import config_dict, read_json_object
from .safetensors import SafetensorsFile, save_safetensors

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def _require_directory(path: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint: no such directory: {path!r}")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"checkpoint: {path!r} is not a directory (pass the model "
                                 "directory holding config.json and the weights)")


def _refuse_weightless(path: str):
    pickles = sorted(n for n in os.listdir(path) if n.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise ValueError(
            f"checkpoint {path!r} holds only pickle weights ({', '.join(pickles)}): fastattn "
            "does not load pickle files, since unpickling can run arbitrary code. Convert them "
            "to safetensors, e.g. with transformers: "
            "AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)")
    raise FileNotFoundError(f"checkpoint: {path!r} has no {SINGLE_FILE} or {INDEX_FILE}")


class Checkpoint(Mapping):
    """The tensors of a model directory (one safetensors file or shards + index) as a read-only
    mapping name -> ndarray (float32 for floating tensors; see SafetensorsFile). mmap=False
    reads every file into memory instead of mapping it (see SafetensorsFile for the trade-off)."""

    def __init__(self, path, *, mmap: bool = True):
        self.path = os.fspath(path)
        self.mmap = mmap
        _require_directory(self.path)
        index_path = os.path.join(self.path, INDEX_FILE)
        self._files: dict[str, SafetensorsFile] = {}
        try:
            # transformers' order: the single file first, then an index
            if os.path.isfile(os.path.join(self.path, SINGLE_FILE)):
                single = self._open(SINGLE_FILE)
                self._where = {name: single for name in single.keys()}
            elif os.path.isfile(index_path):
                self._where = self._open_shards(index_path)
            else:
                _refuse_weightless(self.path)
        except BaseException:
            self.close()
            raise

    def _open(self, filename: str) -> SafetensorsFile:
        if filename not in self._files:
            full = os.path.join(self.path, filename)
            if not os.path.isfile(full):
                raise FileNotFoundError(f"checkpoint {self.path!r}: shard {filename!r} named by "
                                        f"{INDEX_FILE} is missing ({full!r})")
            self._files[filename] = SafetensorsFile(full, mmap=self.mmap)
        return self._files[filename]

    def _open_shards(self, index_path: str) -> dict:
        weight_map = read_json_object(index_path, "checkpoint index").get("weight_map")
        if not isinstance(weight_map, dict):
            raise ValueError(f"checkpoint index {index_path!r}: needs a \"weight_map\" object "
                             "{tensor name: shard file}")
        where = {}
        for name, filename in weight_map.items():
            # A shard is a file of this directory: no paths, so an index cannot point elsewhere.
            if (not isinstance(filename, str) or not filename or os.path.basename(filename)
                    != filename or filename in (".", "..")):
                raise ValueError(f"checkpoint index {index_path!r}: tensor {name!r} maps to "
                                 f"{filename!r}, not a file name in the directory")
            shard = self._open(filename)
            if name not in shard:
                raise ValueError(f"checkpoint index {index_path!r}: tensor {name!r} is listed "
                                 f"in shard {filename!r}, which does not contain it")
            where[name] = shard
        holder = {}
        for filename, shard in self._files.items():
            for name in shard.keys():
                if name in holder:
                    raise ValueError(f"checkpoint index {index_path!r}: tensor {name!r} is in "
                                     f"two shards, {holder[name]!r} and {filename!r}")
                holder[name] = filename
        return where

    # -- mapping interface -------------------------------------------------------------------
    def keys(self):
        return self._where.keys()

    def __iter__(self):
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def __contains__(self, name) -> bool:
        return name in self._where

    def _file(self, name: str) -> SafetensorsFile:
        try:
            return self._where[name]
        except KeyError:
            raise KeyError(f"checkpoint {self.path!r} has no tensor {name!r}") from None

    def __getitem__(self, name: str) -> np.ndarray:
        return self._file(name)[name]

    def raw(self, name: str) -> np.ndarray:
        return self._file(name).raw(name)

    def dtype(self, name: str) -> str:
        return self._file(name).dtype(name)

    def shape(self, name: str) -> tuple:
        return self._file(name).shape(name)

    def release(self, name: str) -> None:
        """Hands back the mapped pages of `name` read so far (SafetensorsFile.release)."""
        self._file(name).release(name)

    @property
    def files(self) -> list[str]:
        """The safetensors files in use (paths)."""
        return [f.path for f in self._files.values()]

    @property
    def config(self):
        """The directory's config.json, parsed by fastattn.load_config."""
        from ..loading import load_config   # the model registry; io itself loads no model code
        return load_config(self.path)

    # -- lifetime ----------------------------------------------------------------------------
    def close(self) -> None:
        for f in self._files.values():
            f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"Checkpoint({self.path!r}, {len(self)} tensors in {len(self._files)} file(s))"


def _split(names: list, sizes: dict, shards: int) -> list[list]:
    """names (in order) cut into `shards` consecutive non-empty groups of similar byte size."""
    total = sum(sizes[n] for n in names)
    groups, current, done = [], [], 0
    for i, name in enumerate(names):
        current.append(name)
        done += sizes[name]
        left_names, left_groups = len(names) - i - 1, shards - len(groups) - 1
        # close the group once it reaches its share, or when the rest is needed one per shard
        if left_groups and (done >= total * (len(groups) + 1) / shards
                            or left_names == left_groups):
            groups.append(current)
            current = []
    groups.append(current)
    return groups


def save_checkpoint(path, config, tensors: Mapping, *, dtype: str | None = "F32",
                    shards: int = 1, codes: Mapping | None = None) -> None:
    """Writes a model directory: config.json (`config`: a dict, or a config load_config gave:
    its attributes, with `extra`'s entries put back at the top level) and `tensors`
    as model.safetensors, or as `shards` files model-0000i-of-0000n.safetensors plus
    model.safetensors.index.json. Floating tensors are stored as `dtype` ("F32", "F16",
    "BF16"; None keeps each array's dtype; `codes` names uint16 arrays holding BF16 / F16 bit
    patterns, see save_safetensors). Files carry {"format": "pt"} metadata, which
    transformers expects. A stale file of the other layout is removed so it cannot win."""
    if not isinstance(config, Mapping):
        if not hasattr(config, "to_dict"):
            raise TypeError(f"save_checkpoint: config must be a dict or a ModelConfig, got "
                            f"{type(config).__name__}")
        config = config_dict(config)
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= max(
            1, len(tensors)):
        raise ValueError(f"save_checkpoint: shards must be an integer in [1, number of tensors "
                         f"({len(tensors)})], got {shards!r}")
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w", encoding="utf-8") as f:
        json.dump(dict(config), f, indent=2, sort_keys=True)
        f.write("\n")
    metadata = {"format": "pt"}
    stale = INDEX_FILE if shards == 1 else SINGLE_FILE
    if os.path.exists(os.path.join(path, stale)):
        os.remove(os.path.join(path, stale))
    if shards == 1:
        save_safetensors(os.path.join(path, SINGLE_FILE), tensors, metadata, dtype, codes)
        return
    names = sorted(tensors)
    sizes = {n: np.asarray(tensors[n]).nbytes for n in names}
    weight_map, total = {}, 0
    for i, group in enumerate(_split(names, sizes, shards), start=1):
        filename = f"model-{i:05d}-of-{shards:05d}.safetensors"
        save_safetensors(os.path.join(path, filename), {n: tensors[n] for n in group}, metadata,
                         dtype, codes)
        with SafetensorsFile(os.path.join(path, filename)) as written:
            total += written.data_size
        weight_map.update({n: filename for n in group})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(path, INDEX_FILE), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=2, sort_keys=True)
        f.write("\n")
