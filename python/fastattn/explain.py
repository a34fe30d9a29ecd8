"""Where a Vision Transformer looks: attention rollout and [CLS] attention maps, from the
per-layer attention probabilities a model returns (``model(x, output_attentions=True)
.attentions``: a tuple of L arrays (B, heads, T, T), T = prefix tokens + patches, rows
summing to 1).

Attention rollout (Abnar & Zuidema 2020, "Quantifying Attention Flow in Transformers"):
a block's output is its input plus attention (the residual), so token mixing in layer l is
modelled as half attention, half identity, and the mixing across layers is the product

    A_l    = fuse_heads(attentions[l])                  (B, T, T); mean, max or min over heads
    Â_l    = (A_l + I) / 2, rows renormalised            Â_l[i, :] /= sum_j Â_l[i, j]
    R      = Â_{L-1} ... Â_1 Â_0                          (B, T, T), rows sum to 1

R[b, i, j] is how much of token j's input reaches token i's output through all layers;
``rollout_map`` reads row 0 ([CLS]) over the patch tokens.

Discarding (Jacob Gildenblat's vit-explain, the widely used implementation, ``rollout`` in
vit_rollout.py): before adding the identity, the ``discard_ratio`` fraction of smallest
entries of each fused map is set to 0, which sharpens the map. That code ranks all T*T
entries of the flattened map of the first batch item, zeroes the int(T*T*ratio) smallest
except flat index 0 (the [CLS]->[CLS] entry; "don't drop the class token"), and then divides
by ``a.sum(dim=-1)``, which broadcasts over the last axis — column j divided by row j's sum,
a row normalisation only when the matrix is symmetric. Here instead: every batch item;
the protected entries are the whole columns of the prefix tokens ([CLS], and DeiT's
distillation token; what every token reads from [CLS]); int(ratio * T * (T - P)) of the
other entries (P prefix tokens) are zeroed, smallest first (ties: lower flat index first);
and rows are renormalised (keepdims), so R stays row-stochastic.

NumPy reference (one batch item, mean fusion, no discarding):

    R = np.eye(T)
    for att in attentions:                      # att: (heads, T, T)
        a = att.mean(0) + np.eye(T)
        a /= a.sum(-1, keepdims=True)
        R = a @ R
"""
from __future__ import annotations

import math
import numbers

import numpy as np

HEAD_FUSIONS = ("mean", "max", "min")


def _check_attentions(op: str, attentions) -> list[np.ndarray]:
    if isinstance(attentions, np.ndarray) or not isinstance(attentions, (list, tuple)):
        raise TypeError(f"{op}: attentions must be a tuple or list of arrays (B, heads, T, T) "
                        f"(model output .attentions), got {type(attentions).__name__}")
    if not attentions:
        raise ValueError(f"{op}: attentions is empty (the model returned no layers; call it "
                         "with output_attentions=True)")
    first = None
    out = []
    for i, a in enumerate(attentions):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: attentions[{i}] must be a numpy.ndarray, "
                            f"got {type(a).__name__}")
        if a.dtype not in (np.float32, np.float64):
            raise TypeError(f"{op}: attentions[{i}] must be float32 or float64, got {a.dtype}")
        if a.ndim != 4 or a.shape[2] != a.shape[3] or 0 in a.shape:
            raise ValueError(f"{op}: attentions[{i}] must have shape (B, heads, T, T) with "
                             f"nothing empty, got {a.shape}")
        if first is None:
            first = a.shape
        elif a.shape != first:
            raise ValueError(f"{op}: attentions[{i}] has shape {a.shape}, attentions[0] "
                             f"{first}: every layer must have the same shape")
        out.append(a)
    return out


def fuse_heads(attention: np.ndarray, head_fusion: str = "mean") -> np.ndarray:
    """(B, heads, T, T) -> (B, T, T): the mean, max or min over the heads, float64."""
    if head_fusion not in HEAD_FUSIONS:
        raise ValueError(f"fuse_heads: head_fusion must be 'mean', 'max' or 'min', "
                         f"got {head_fusion!r}")
    a = attention.astype(np.float64)
    return {"mean": np.mean, "max": np.max, "min": np.min}[head_fusion](a, axis=1)


def _discard(fused: np.ndarray, discard_ratio: float, num_prefix_tokens: int) -> np.ndarray:
    """Zero the int(ratio * T * (T - P)) smallest entries of each (T, T) map outside the first
    P columns (the prefix tokens' columns are kept)."""
    b, t, _ = fused.shape
    body = fused[:, :, num_prefix_tokens:].reshape(b, -1)     # (B, T * (T - P)), a copy
    n = int(discard_ratio * body.shape[1])
    if n == 0:
        return fused
    # stable: among equal values the lower flat index goes first
    drop = np.argsort(body, axis=1, kind="stable")[:, :n]
    np.put_along_axis(body, drop, 0.0, axis=1)
    out = fused.copy()
    out[:, :, num_prefix_tokens:] = body.reshape(b, t, t - num_prefix_tokens)
    return out


def attention_rollout(attentions, head_fusion: str = "mean", discard_ratio: float = 0.0,
                      num_prefix_tokens: int = 1) -> np.ndarray:
    """Attention rollout over all layers: (B, T, T) float32, rows summing to 1 (module
    docstring for the equations). ``head_fusion``: 'mean', 'max' or 'min' over the heads;
    ``discard_ratio`` in [0, 1): the fraction of smallest entries of each fused map zeroed,
    the prefix tokens' columns excepted (``num_prefix_tokens``: 1 for [CLS], 2 with DeiT's
    distillation token). Computed in float64."""
    op = "attention_rollout"
    layers = _check_attentions(op, attentions)
    if isinstance(discard_ratio, bool) or not isinstance(discard_ratio, numbers.Real) \
            or not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"{op}: discard_ratio must be a number in [0, 1), "
                         f"got {discard_ratio!r}")
    t = layers[0].shape[-1]
    prefix = _prefix(op, num_prefix_tokens, t)
    eye = np.eye(t)
    rollout = None
    for att in layers:
        a = _discard(fuse_heads(att, head_fusion), float(discard_ratio), prefix) + eye
        # the identity keeps every row sum >= 1, so the division is safe
        a /= a.sum(axis=-1, keepdims=True)
        rollout = a if rollout is None else a @ rollout          # (B, T, T)
    return rollout.astype(np.float32)


def rollout_map(attentions, head_fusion: str = "mean", discard_ratio: float = 0.0,
                num_prefix_tokens: int = 1, grid=None) -> np.ndarray:
    """The [CLS] row of ``attention_rollout`` over the patch tokens, as (B, h, w) float32:
    ``R[:, 0, P:]`` reshaped to the patch grid (``grid = (h, w)``; None: a square grid)."""
    rollout = attention_rollout(attentions, head_fusion, discard_ratio, num_prefix_tokens)
    return _to_grid("rollout_map", rollout[:, 0, num_prefix_tokens:], grid)


def cls_attention_map(attentions, layer: int = -1, head: int | None = None,
                      num_prefix_tokens: int = 1, grid=None) -> np.ndarray:
    """What [CLS] attends to in one layer: ``attentions[layer][:, head, 0, P:]`` (``head``
    None: the mean over heads) reshaped to the patch grid, (B, h, w) float32."""
    op = "cls_attention_map"
    layers = _check_attentions(op, attentions)
    if isinstance(layer, bool) or not isinstance(layer, numbers.Integral) \
            or not -len(layers) <= layer < len(layers):
        raise ValueError(f"{op}: layer must be an int in [{-len(layers)}, {len(layers)}), "
                         f"got {layer!r}")
    att = layers[layer]
    prefix = _prefix(op, num_prefix_tokens, att.shape[-1])
    if head is None:
        row = att[:, :, 0, prefix:].astype(np.float64).mean(axis=1)
    else:
        if isinstance(head, bool) or not isinstance(head, numbers.Integral) \
                or not -att.shape[1] <= head < att.shape[1]:
            raise ValueError(f"{op}: head must be None or an int in [{-att.shape[1]}, "
                             f"{att.shape[1]}), got {head!r}")
        row = att[:, head, 0, prefix:]
    return _to_grid(op, np.asarray(row, np.float32), grid)


def upsample_map(attention_map: np.ndarray, image_size) -> np.ndarray:
    """A patch-grid map (B, h, w) or (h, w) -> the image's resolution ``image_size = (H, W)``
    with bilinear interpolation (``fastattn.interpolate``, align_corners=False: each patch's
    value sits at its patch's centre), float32, same leading shape."""
    from . import interpolate  # fastattn.interpolate (torch semantics)

    op = "upsample_map"
    m = np.asarray(attention_map, dtype=np.float32)
    if m.ndim not in (2, 3):
        raise ValueError(f"{op}: attention_map must have shape (h, w) or (B, h, w), "
                         f"got {m.shape}")
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: image_size must be (height, width), "
                         f"got {image_size!r}") from None
    batch = m if m.ndim == 3 else m[None]
    out = interpolate(np.ascontiguousarray(batch[:, None]), size=(height, width),
                      mode="bilinear", align_corners=False)[:, 0]
    return out if m.ndim == 3 else out[0]


def normalize_map(attention_map: np.ndarray) -> np.ndarray:
    """Each map (the last two axes) scaled to [0, 1] for display: (m - min) / (max - min);
    a constant map becomes 0."""
    m = np.asarray(attention_map, dtype=np.float64)
    if m.ndim < 2:
        raise ValueError(f"normalize_map: attention_map must have at least 2 dimensions, "
                         f"got shape {m.shape}")
    lo = m.min(axis=(-2, -1), keepdims=True)
    span = m.max(axis=(-2, -1), keepdims=True) - lo
    out = np.divide(m - lo, span, out=np.zeros_like(m), where=span > 0)
    return out.astype(np.float32)


def _prefix(op: str, num_prefix_tokens, t: int) -> int:
    if isinstance(num_prefix_tokens, bool) or not isinstance(num_prefix_tokens, numbers.Integral) \
            or not 0 <= num_prefix_tokens < t:
        raise ValueError(f"{op}: num_prefix_tokens must be an int in [0, {t}) for {t} tokens, "
                         f"got {num_prefix_tokens!r}")
    return int(num_prefix_tokens)


def _to_grid(op: str, rows: np.ndarray, grid) -> np.ndarray:
    """(B, N) patch values -> (B, h, w); grid None: h = w = sqrt(N)."""
    n = rows.shape[-1]
    if grid is None:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"{op}: {n} patch tokens do not form a square grid; pass "
                             "grid=(h, w) (image height / patch size, width / patch size)")
        grid = (side, side)
    try:
        h, w = (int(v) for v in grid)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: grid must be (h, w), got {grid!r}") from None
    if h * w != n:
        raise ValueError(f"{op}: grid {(h, w)} has {h * w} cells, the map has {n} patch tokens")
    return np.ascontiguousarray(rows.reshape(rows.shape[0], h, w), dtype=np.float32)
