"""SAM's decomposed relative-position bias (MViTv2 / ViTDet), the part the attention kernel
does not do: the tables for a query / key grid, and the per-query terms rel_h, rel_w.

For a query at grid cell (y, x) and a key at (y', x'), the reference adds to the score

    q . Rh[y, y'] + q . Rw[x, x']        (q the UNscaled query: the bias is not divided by
                                          sqrt(head_dim), unlike q . k)

Rh[y, y'] = table_h[y - y' + (k_h - 1)] for equal query and key sizes (get_rel_pos below has
the general formula). Both terms factor through the query's row or column:

    rel_h[b, h, (y, x), y'] = q[b, h, (y, x)] . Rh[y, y']       (B, H, Lq, Kh)
    rel_w[b, h, (y, x), x'] = q[b, h, (y, x)] . Rw[x, x']       (B, H, Lq, Kw)

and fastattn.attention(q, k, v, rel_pos=(rel_h, rel_w)) adds rel_h[.., y'] + rel_w[.., x'] to
score (i, j = y' Kw + x') inside its tile: the (Lq, Lk) bias, 800 MB for ViT-B's global blocks
at 1024 px, is never materialised.
"""
from __future__ import annotations

import numpy as np

from ...ops import interpolate, matmul


def resize_table(table: np.ndarray, length: int) -> np.ndarray:
    """A (L, C) table linearly resized to (length, C): torch's F.interpolate(mode="linear",
    align_corners=False) along L, which the reference applies when L != length (source index
    (i + 0.5) L / length - 0.5, clamped at 0; taps clamped at L - 1). Computed as a bilinear
    resize of a (1, C, L, 1) image: the width axis (1 -> 1) is the identity."""
    n, c = table.shape
    if n == length:
        return table
    image = np.ascontiguousarray(table.T).reshape(1, c, n, 1)
    out = interpolate(image, size=(length, 1), mode="bilinear", align_corners=False)
    return np.ascontiguousarray(out.reshape(c, length).T)


def get_rel_pos(q_size: int, k_size: int, table: np.ndarray) -> np.ndarray:
    """The reference's get_rel_pos: (q_size, k_size, C) embeddings of each query / key offset.

    The table is resized to 2 max(q, k) - 1 rows when it has another length; the coordinates
    of the shorter side are stretched to the longer one:
        idx[i, j] = i max(k/q, 1) - j max(q/k, 1) + (k - 1) max(q/k, 1),  truncated
    (float32 arithmetic, as torch computes it on float32 tensors; for q == k, i - j + k - 1)."""
    length = 2 * max(q_size, k_size) - 1
    resized = resize_table(np.asarray(table, np.float32), length)
    f32 = np.float32
    qc = np.arange(q_size, dtype=f32)[:, None] * f32(max(k_size / q_size, 1.0))
    kc = np.arange(k_size, dtype=f32)[None, :] * f32(max(q_size / k_size, 1.0))
    # the offset is a Python float (double) product, cast once when added to the tensor
    idx = (qc - kc) + f32((k_size - 1) * max(q_size / k_size, 1.0))
    return resized[idx.astype(np.int64)]


class RelPosTables:
    """One attention layer's two tables, with the (query side, C, key side) transposes the
    matmuls read cached per grid size (a block sees one window size, or the image's grid)."""

    def __init__(self, table_h: np.ndarray, table_w: np.ndarray):
        self.table_h, self.table_w = table_h, table_w
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def transposed(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """(Rh^T (h, C, h), Rw^T (w, C, w)) for an h x w query and key grid."""
        key = (h, w)
        if key not in self._cache:
            rh = get_rel_pos(h, h, self.table_h)
            rw = get_rel_pos(w, w, self.table_w)
            self._cache[key] = (np.ascontiguousarray(rh.transpose(0, 2, 1)),
                                np.ascontiguousarray(rw.transpose(0, 2, 1)))
        return self._cache[key]

    def terms(self, q: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """rel_h (B, H, h w, h) and rel_w (B, H, h w, w) for queries q (B, H, h w, C) (any
        strides with unit-stride rows), keys on the same h x w grid.

        One batched matmul per term, batched over the grid row (rel_h) or column (rel_w) that
        selects the table slice: q viewed (h, B, H, w, C) @ Rh^T[y] (C, h), written through a
        transposed view of the contiguous result (no copy of q, none of the output)."""
        b, heads, _, c = q.shape
        rh_t, rw_t = self.transposed(h, w)
        q5 = q.reshape(b, heads, h, w, c)
        rel_h = np.empty((b, heads, h, w, h), np.float32)
        rel_w = np.empty((b, heads, h, w, w), np.float32)
        matmul(q5.transpose(2, 0, 1, 3, 4), rh_t[:, None, None], out=rel_h.transpose(2, 0, 1, 3, 4))
        matmul(q5.transpose(3, 0, 1, 2, 4), rw_t[:, None, None], out=rel_w.transpose(3, 0, 1, 2, 4))
        return rel_h.reshape(b, heads, h * w, h), rel_w.reshape(b, heads, h * w, w)
