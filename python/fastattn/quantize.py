"""`fastattn quantize MODEL_DIR OUT_DIR --weights q8`: a model directory whose Linear weights are
stored in a weight format, so that `fastattn.load(OUT_DIR)` holds them in that format without
making a float32 copy first (docs/quantization.md, "Files").

    from fastattn.quantize import quantize
    quantize("tinyllama", "tinyllama-q8", "q8")

The output directory has config.json (the input's, plus ``quantization_config``), the weights
as model.safetensors (or shards of at most SHARD_BYTES, with an index), and every other file of
the input (tokenizer files, generation_config.json, ...) copied as it is. In the weights:

- each Linear weight ``X`` the family's builder reads (the transformer blocks', the LM head /
  task heads'; a tied LM head as ``lm_head.weight``) in the format's storage
  (PackedMatrix.storage(), docs/weight_formats.md):
  q8 / q4: ``X`` int8 (N, Kp) quants / uint8 (N, Kp/2) nibble pairs, (out, in) rows whatever
  the family's own layout, and ``X.scales`` (N, Kp/32); bfloat16 / float16: ``X`` as a BF16 / F16
  tensor in the checkpoint's own layout (the file is then an ordinary half-precision
  checkpoint);
- every other tensor (embeddings, norms, biases, convolutions, buffers) exactly as stored in
  the input.

Which tensors are Linear weights is what the builder says: the model is built once from the
input with a source that records each matrix it takes (models/weights.py, `record_matrix`).
"""
from __future__ import annotations

import os
import shutil

import numpy as np

from .io.checkpoint import INDEX_FILE, PICKLE_SUFFIXES, SINGLE_FILE, Checkpoint, save_checkpoint
from .io.json_fields import read_config_json
from .models.weights import SCALES
from .weight_formats import BLOCK as BLOCK_SIZE   # weights per q8 / q4 scale, along K
from .weight_formats import WEIGHT_FORMATS as FORMATS

# the formats a quantized file can hold (float32 is the unquantized checkpoint)
QUANTIZE_FORMATS = tuple(f for f in FORMATS if f != "float32")
SHARD_BYTES = 4 << 30   # one file up to 4 GiB (safetensors readers map a file whole)
QUANT_METHOD = "fastattn"


class _Recording:
    """A checkpoint seen by a builder, recording each matrix it takes: name -> (layout,
    names it is saved under)."""

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint
        self.matrices: dict[str, tuple[str, list]] = {}

    def keys(self):
        return self.checkpoint.keys()

    def __getitem__(self, name):
        return self.checkpoint[name]

    def raw(self, name):
        return self.checkpoint.raw(name)

    def dtype(self, name):
        return self.checkpoint.dtype(name)

    def shape(self, name):
        return self.checkpoint.shape(name)

    def record_matrix(self, name: str, layout: str, saved: str) -> None:
        entry = self.matrices.setdefault(name, (layout, []))
        if saved not in entry[1]:
            entry[1].append(saved)


def quantization_config(weights: str) -> dict:
    """config.json's ``quantization_config`` of a file in format `weights`."""
    from . import __version__
    q = {"quant_method": QUANT_METHOD, "format": weights, "fastattn_version": __version__,
         "linear_weights_only": True}
    if weights in ("q8", "q4"):
        q.update(block_size=BLOCK_SIZE, layout="out_in", scales_suffix=SCALES)
    return q


def check_quantization_config(raw: dict, where: str) -> str | None:
    """The format a config.json's ``quantization_config`` declares (None without one);
    ValueError for one fastattn did not write or cannot read."""
    q = raw.get("quantization_config")
    if q is None:
        return None
    if not isinstance(q, dict) or q.get("quant_method") != QUANT_METHOD:
        method = q.get("quant_method") if isinstance(q, dict) else q
        raise ValueError(f"load: {where}: quantization_config's quant_method is {method!r}; "
                         f"fastattn reads only its own ({QUANT_METHOD!r}, written by "
                         "`fastattn quantize`)")
    if q.get("format") not in FORMATS:
        raise ValueError(f"load: {where}: quantization_config's format must be one of "
                         f"{', '.join(FORMATS)}, got {q.get('format')!r}")
    if q["format"] in ("q8", "q4") and q.get("block_size") != BLOCK_SIZE:
        raise ValueError(f"load: {where}: quantization_config's block_size must be "
                         f"{BLOCK_SIZE}, got {q.get('block_size')!r}")
    return q["format"]


def _matrix_storage(checkpoint, name: str, layout: str, weights: str) -> dict:
    """name -> (array, safetensors code or None) of one matrix in format `weights`."""
    from .ops import PackedMatrix
    w = np.asarray(checkpoint[name])                 # float32 (converted if 16-bit)
    pm = PackedMatrix(w if layout == "out_in" else w.T, transpose=True, weights=weights)
    storage = pm.storage()
    if weights in ("bfloat16", "float16"):
        bits = storage["weight"]                     # (out, in) bit patterns
        if layout != "out_in":                       # back to the checkpoint's own layout
            bits = np.ascontiguousarray(bits.T)
        return {"": (bits, "BF16" if weights == "bfloat16" else "F16")}
    return {"": (storage["weight"], None), SCALES: (storage["scales"], None)}


def quantize(model_dir, out_dir, weights: str = "q8") -> dict:
    """Writes `model_dir`'s model to `out_dir` with its Linear weights in format `weights`
    ("q8", "q4", "bfloat16", "float16"; see the module docstring). Returns a summary:
    {"format", "matrices" (count), "bytes" (of the weights written), "files"}.
    ValueError for a format, a family without weight formats (SAM, ResNet), an input that is
    already quantized, or `out_dir` being `model_dir`."""
    from .loading import FAMILIES, builder_for, load_config
    if weights not in QUANTIZE_FORMATS:
        raise ValueError(f"quantize: weights must be one of {', '.join(QUANTIZE_FORMATS)}, "
                         f"got {weights!r}")
    model_dir, out_dir = os.fspath(model_dir), os.fspath(out_dir)
    if os.path.abspath(model_dir) == os.path.abspath(out_dir):
        raise ValueError("quantize: OUT_DIR must differ from MODEL_DIR (the input's files are "
                         "mapped while the output is written)")
    raw, where = read_config_json(model_dir)
    stored = check_quantization_config(raw, where)
    if stored is not None:
        raise ValueError(f"quantize: {model_dir!r} is already a fastattn {stored} file; "
                         "quantize the original checkpoint")
    config = load_config(model_dir)
    # SAM converts its image encoder at load (from float32 arrays it builds its parts from),
    # so there is no file layout to record for it
    if (config.model_type not in FAMILIES or not FAMILIES[config.model_type].formats
            or config.model_type == "sam"):
        raise ValueError(f"quantize: {config.model_type!r} models have no quantized file "
                         "format; files exist for gpt2, llama / mistral / qwen2, the BERT "
                         "family and ViT (SAM: fastattn.load(..., weights=) converts its "
                         "image encoder at load)")
    with Checkpoint(model_dir) as checkpoint:
        source = _Recording(checkpoint)
        # built once, as stored, to learn which tensors are Linear weights (and to check
        # that the checkpoint loads at all); dropped before anything is quantized
        model = builder_for(config.model_type)(config, source, weights="as-stored")
        del model
        tensors, codes = {}, {}
        for name in checkpoint.keys():
            layout, saved = source.matrices.get(name, (None, []))
            if name not in saved:               # not (only) a matrix: kept as stored
                code = checkpoint.dtype(name)
                tensors[name] = checkpoint.raw(name)
                if code in ("BF16", "F16"):
                    tensors[name] = tensors[name].view(np.uint16)
                    codes[name] = code
            if saved:
                storage = _matrix_storage(checkpoint, name, layout, weights)
                for out_name in saved:
                    for suffix, (array, code) in storage.items():
                        tensors[out_name + suffix] = array
                        if code:
                            codes[out_name + suffix] = code
        total = sum(a.nbytes for a in tensors.values())
        out_raw = dict(raw, quantization_config=quantization_config(weights))
        shards = max(1, min(len(tensors), -(-total // SHARD_BYTES)))
        os.makedirs(out_dir, exist_ok=True)
        save_checkpoint(out_dir, out_raw, tensors, dtype=None, shards=shards, codes=codes)
        del tensors
    copied = _copy_other_files(model_dir, out_dir)
    return {"format": weights, "matrices": sum(len(s) for _, s in source.matrices.values()),
            "bytes": total, "files": copied}


def _copy_other_files(model_dir: str, out_dir: str) -> list[str]:
    """Copies the input's files other than its weights and config.json (tokenizer files,
    generation_config.json, ...) into out_dir; returns their names."""
    skip = {"config.json", SINGLE_FILE, INDEX_FILE}
    copied = []
    for entry in sorted(os.listdir(model_dir)):
        full = os.path.join(model_dir, entry)
        if (entry in skip or entry.endswith(".safetensors") or entry.endswith(PICKLE_SUFFIXES)
                or not os.path.isfile(full)):
            continue
        shutil.copyfile(full, os.path.join(out_dir, entry))
        copied.append(entry)
    return copied


def describe(summary: dict) -> str:
    """One line for the CLI."""
    return (f"{summary['matrices']} Linear weights stored as {summary['format']}; "
            f"{summary['bytes'] / 2**20:.1f} MiB of tensors; copied: "
            f"{', '.join(summary['files']) or 'nothing else'}")

