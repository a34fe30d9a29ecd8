"""Pictures of attention: token x token heatmaps (any model, e.g. BERT's attentions) and
attention maps laid over an image (ViT rollout / [CLS] maps).

Needs matplotlib, an optional dependency: ``pip install 'fastattn[plot]'``. matplotlib is
imported only when a function here is called, and only through its object-oriented API with
the Agg canvas (``matplotlib.figure.Figure`` + ``FigureCanvasAgg``): no window opens, and
the pyplot state and backend of the calling program are left alone.
"""
from __future__ import annotations

import os

import numpy as np

_MATPLOTLIB_MISSING = ("fastattn.plot needs matplotlib, an optional dependency: "
                       "pip install 'fastattn[plot]'")


def require_matplotlib():
    """matplotlib, Figure and FigureCanvasAgg; ImportError naming the extra when missing."""
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError(_MATPLOTLIB_MISSING) from None
    return matplotlib, Figure, FigureCanvasAgg


def attention_heatmap(matrix: np.ndarray, x_labels=None, y_labels=None, title=None,
                      path: str | os.PathLike | None = None, cmap: str = "viridis"):
    """A (queries, keys) attention matrix as a heatmap with a colour bar: rows are the
    attending tokens (``y_labels``), columns the attended ones (``x_labels``). Returns the
    matplotlib ``Figure``; with ``path``, also writes it as PNG (100 dpi). For one head of a
    model's attentions: ``attention_heatmap(out.attentions[layer][0, head], tokens, tokens)``."""
    op = "attention_heatmap"
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or 0 in m.shape:
        raise ValueError(f"{op}: matrix must be 2-D (queries, keys) and non-empty, "
                         f"got shape {m.shape}")
    for name, labels, n in (("x_labels", x_labels, m.shape[1]), ("y_labels", y_labels, m.shape[0])):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{op}: {name} has {len(labels)} labels, the matrix has {n} "
                             f"{'columns' if name == 'x_labels' else 'rows'}")
    _, Figure, FigureCanvasAgg = require_matplotlib()
    # about 0.3 inch per token, within [4, 16] inches
    side_w = min(max(4.0, 0.3 * m.shape[1] + 2.0), 16.0)
    side_h = min(max(3.5, 0.3 * m.shape[0] + 1.5), 16.0)
    fig = Figure(figsize=(side_w, side_h), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap=cmap, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax)
    if x_labels is not None:
        ax.set_xticks(range(m.shape[1]), [str(t) for t in x_labels], rotation=90)
    if y_labels is not None:
        ax.set_yticks(range(m.shape[0]), [str(t) for t in y_labels])
    ax.set_xlabel("key (attended)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(str(title))
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), format="png")
    return fig


def overlay(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.5, cmap: str = "jet",
            path: str | os.PathLike | None = None) -> np.ndarray:
    """``heatmap`` (h, w) laid over ``image`` (H, W, 3): the map is scaled to [0, 1]
    (min -> 0, max -> 1), upsampled bilinearly to (H, W) when its size differs
    (fastattn.explain.upsample_map), coloured with ``cmap``, and blended

        out = (1 - alpha) * image + alpha * cmap(map)

    ``image``: uint8 (0-255) or float in [0, 1]. Returns the blend as an (H, W, 3) uint8 RGB
    array (the image's own resolution, no axes or margins); with ``path``, also writes it
    as a PNG of exactly H x W pixels."""
    from .explain import normalize_map, upsample_map

    op = "overlay"
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or 0 in img.shape:
        raise ValueError(f"{op}: image must have shape (H, W, 3), got {img.shape}")
    if img.dtype == np.uint8:
        rgb = img.astype(np.float64) / 255.0
    elif np.issubdtype(img.dtype, np.floating):
        rgb = np.clip(img.astype(np.float64), 0.0, 1.0)
    else:
        raise TypeError(f"{op}: image must be uint8 or float in [0, 1], got {img.dtype}")
    hm = np.asarray(heatmap, dtype=np.float32)
    if hm.ndim != 2 or 0 in hm.shape:
        raise ValueError(f"{op}: heatmap must have shape (h, w), got {hm.shape}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"{op}: alpha must be in [0, 1], got {alpha!r}")
    matplotlib, _, _ = require_matplotlib()
    if hm.shape != img.shape[:2]:
        hm = upsample_map(hm, img.shape[:2])
    colours = matplotlib.colormaps[cmap](normalize_map(hm))[..., :3]   # (H, W, 3) in [0, 1]
    blend = (1.0 - alpha) * rgb + alpha * colours
    out = np.clip(np.rint(blend * 255.0), 0, 255).astype(np.uint8)
    if path is not None:
        import matplotlib.image
        matplotlib.image.imsave(os.fspath(path), out, format="png")
    return out
