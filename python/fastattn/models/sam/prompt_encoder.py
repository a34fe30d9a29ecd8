"""Segment Anything's prompt encoder: points, boxes and masks -> sparse and dense embeddings.

    point (x, y), label l:  e = pe((x + 0.5, y + 0.5) / S) + E[l]     l in {0, 1, 2, 3}
                            e = E_not_a_point                          l = -1 (no pe)
                            e = 0, never attended as a key             l = -10 (absent)
    box (x1, y1, x2, y2):   two corners, pe(corner + 0.5) + E[2] (top-left), + E[3] (bottom-right)
    pe(c) = [sin(2 pi (2c - 1) G), cos(2 pi (2c - 1) G)]   random Fourier features, G (2, C/2)
    no box given:           the point set gets one more point, (0, 0) with label -1
    mask (4h x 4w logits):  conv 2x2/2 -> LN2d -> GELU -> conv 2x2/2 -> LN2d -> GELU -> conv 1x1
    no mask:                the no-mask embedding at every one of the h x w cells

P prompts are encoded at once (one image): points (P, N, 2), labels (P, N), boxes (P, 4),
masks (P, 1, 4h, 4w). Label -10 pads point sets of different lengths to one N; the decoder
masks those tokens out as attention keys, so a padded set decodes exactly as it would alone
(Hugging Face zeroes them but still attends to them). Labels 2 / 3 on points embed as box
corners (the official code and Hugging Face give such points no label embedding).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...activation_names import activation_name
from ...ops import conv2d, gelu, layer_norm
from ...position_encodings import RandomFourierEncoding
from .config import SamPromptConfig

ABSENT = -10
NOT_A_POINT = -1
LABELS = (ABSENT, NOT_A_POINT, 0, 1, 2, 3)
_OP = "SamPromptEncoder"


def layer_norm_2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float,
                  activation: str | None = None) -> np.ndarray:
    """LayerNorm over the channels of x (N, C, H, W) (SAM's LayerNorm2d) [then GELU]:
    channels-last for the kernel, back to NCHW."""
    y = layer_norm(np.ascontiguousarray(x.transpose(0, 2, 3, 1)), weight, bias, eps)
    if activation is not None:
        gelu(y, out=y)
    return np.ascontiguousarray(y.transpose(0, 3, 1, 2))


class SamPromptEncoder:
    """Built from the prompt encoder's tensors (Hugging Face names without "prompt_encoder.")
    and a SamPromptConfig. See the module docstring for the equations."""

    def __init__(self, weights: Mapping[str, np.ndarray], config: SamPromptConfig):
        c = config
        self.config = c
        d, g = c.hidden_size, c.image_embedding_size

        def t(name, shape):
            if name not in weights:
                raise ValueError(f"{_OP}: missing tensor {name!r}")
            a = np.ascontiguousarray(weights[name], dtype=np.float32)
            if a.shape != tuple(shape):
                raise ValueError(f"{_OP}: tensor {name!r} has shape {a.shape}, expected "
                                 f"{tuple(shape)}")
            return a

        self.fourier = RandomFourierEncoding(num_feats=d // 2)
        self.fourier.gaussian_matrix = t("shared_embedding.positional_embedding", (2, d // 2))
        # label -> embedding added to the point's pe (0 negative, 1 positive, 2 / 3 corners)
        self.point_embed = np.concatenate(
            [t(f"point_embed.{i}.weight", (1, d)) for i in range(c.num_point_embeddings)])
        self.not_a_point = t("not_a_point_embed.weight", (1, d))[0]
        self.no_mask = t("no_mask_embed.weight", (1, d))[0]
        m4, m = c.mask_input_channels // 4, c.mask_input_channels
        self.mask_convs = [(t(f"mask_embed.conv{i}.weight", s), t(f"mask_embed.conv{i}.bias",
                                                                  (s[0],)))
                           for i, s in ((1, (m4, 1, 2, 2)), (2, (m, m4, 2, 2)),
                                        (3, (d, m, 1, 1)))]
        self.mask_norms = [(t(f"mask_embed.layer_norm{i}.weight", (n,)),
                            t(f"mask_embed.layer_norm{i}.bias", (n,))) for i, n in ((1, m4),
                                                                                     (2, m))]
        self.activation = activation_name(c.hidden_act)
        self._image_pe = self.fourier.grid(g, g)[None]          # (1, C, h, w), a constant

    def image_positional_embeddings(self) -> np.ndarray:
        """(1, C, h, w): pe of the embedding grid's cell centres ((j + 0.5) / w, (i + 0.5) / h)."""
        return self._image_pe

    # ---------------------------------------------------------------------------- checking
    def _prompts(self, points, labels, boxes, masks):
        """The arguments checked and converted: points float64 (P, N, 2), labels int64 (P, N),
        boxes float64 (P, 4), masks float32 (P, 1, 4h, 4w); and P."""
        sizes = {}
        if (points is None) != (labels is None):
            raise ValueError(f"{_OP}: points and labels go together: got points "
                             f"{'None' if points is None else 'an array'} and labels "
                             f"{'None' if labels is None else 'an array'}")
        if points is not None:
            points = _real_array("points", points, 3, "(P, N, 2)")
            if points.shape[2] != 2:
                raise ValueError(f"{_OP}: points must be (P, N, 2) (x, y) pixel coordinates, "
                                 f"got shape {points.shape}")
            labels = _label_array(labels)
            if labels.shape != points.shape[:2]:
                raise ValueError(f"{_OP}: labels must be (P, N) = {points.shape[:2]} like "
                                 f"points {points.shape}, got shape {labels.shape}")
            sizes["points"] = points.shape[0]
        if boxes is not None:
            boxes = _real_array("boxes", boxes, 2, "(P, 4)")
            if boxes.shape[1] != 4:
                raise ValueError(f"{_OP}: boxes must be (P, 4) as (x1, y1, x2, y2), got shape "
                                 f"{boxes.shape}")
            bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise ValueError(f"{_OP}: boxes must have x1 <= x2 and y1 <= y2, got box {i} = "
                                 f"{boxes[i].tolist()}")
            sizes["boxes"] = boxes.shape[0]
        if masks is not None:
            if not isinstance(masks, np.ndarray) or masks.dtype != np.float32:
                got = masks.dtype if isinstance(masks, np.ndarray) else type(masks).__name__
                raise TypeError(f"{_OP}: masks must be a float32 numpy array (P, 1, 4h, 4w) of "
                                f"logits, got {got}")
            s = 4 * self.config.image_embedding_size
            if masks.ndim != 4 or masks.shape[1:] != (1, s, s):
                raise ValueError(f"{_OP}: masks must be (P, 1, {s}, {s}), got shape "
                                 f"{masks.shape}")
            sizes["masks"] = masks.shape[0]
        if len(set(sizes.values())) > 1:
            raise ValueError(f"{_OP}: the prompt counts P differ: " +
                             ", ".join(f"{k} {v}" for k, v in sizes.items()))
        p = next(iter(sizes.values()), 1)
        if p == 0:
            raise ValueError(f"{_OP}: no prompt (P = 0)")
        return points, labels, boxes, masks, p

    # ---------------------------------------------------------------------------- encoding
    def embed_points(self, points: np.ndarray, labels: np.ndarray, pad: bool):
        """(P, N [+ 1], C) embeddings and (P, N [+ 1]) validity (label != -10)."""
        if pad:     # the reference's padding point: (0, 0), label -1
            p = points.shape[0]
            points = np.concatenate([points, np.zeros((p, 1, 2))], axis=1)
            labels = np.concatenate([labels, np.full((p, 1), NOT_A_POINT)], axis=1)
        s = self.config.image_size
        e = self.fourier.encode_points(points, (s, s))          # +0.5, / S, Fourier features
        real = labels >= 0
        e[real] += self.point_embed[labels[real]]
        e[labels == NOT_A_POINT] = self.not_a_point
        e[labels == ABSENT] = 0.0
        return e, labels != ABSENT

    def embed_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """(P, 2, C): the corners (x1, y1), (x2, y2) as points labelled 2 and 3."""
        s = self.config.image_size
        e = self.fourier.encode_points(boxes.reshape(-1, 2, 2), (s, s))
        e += self.point_embed[2:4]
        return e

    def embed_masks(self, masks: np.ndarray) -> np.ndarray:
        """(P, 1, 4h, 4w) logits -> (P, C, h, w)."""
        (w1, b1), (w2, b2), (w3, b3) = self.mask_convs
        eps = self.config.layer_norm_eps
        x = conv2d(masks, w1, b1, stride=2)
        x = layer_norm_2d(x, *self.mask_norms[0], eps, self.activation)
        x = conv2d(x, w2, b2, stride=2)
        x = layer_norm_2d(x, *self.mask_norms[1], eps, self.activation)
        return conv2d(x, w3, b3)

    def __call__(self, points=None, labels=None, boxes=None, masks=None):
        """(sparse (P, n, C), dense (P, C, h, w), sparse_valid (P, n) bool) for P prompts.

        points (P, N, 2) (x, y) in input pixels (the S x S frame the image was resized and
        padded to), labels (P, N) in {-10, -1, 0, 1, 2, 3}, boxes (P, 4) (x1, y1, x2, y2),
        masks (P, 1, 4h, 4w) float32 logits; any may be None (no prompt at all: P = 1, no
        sparse token). sparse: the points (plus the (0, 0) label -1 point when there is no
        box), then the box corners. dense without masks is a read-only broadcast view of the
        no-mask embedding (the decoder then shares the image tokens across prompts)."""
        points, labels, boxes, masks, p = self._prompts(points, labels, boxes, masks)
        c, g = self.config.hidden_size, self.config.image_embedding_size
        sparse, valid = [], []
        if points is not None:
            e, ok = self.embed_points(points, labels, pad=boxes is None)
            sparse.append(e)
            valid.append(ok)
        if boxes is not None:
            sparse.append(self.embed_boxes(boxes))
            valid.append(np.ones((p, 2), bool))
        if sparse:
            sparse_out = np.ascontiguousarray(np.concatenate(sparse, axis=1), dtype=np.float32)
            valid_out = np.concatenate(valid, axis=1)
        else:
            sparse_out, valid_out = np.zeros((p, 0, c), np.float32), np.zeros((p, 0), bool)
        if masks is not None:
            dense = self.embed_masks(masks)
        else:
            dense = np.broadcast_to(self.no_mask.reshape(1, c, 1, 1), (p, c, g, g))
        return sparse_out, dense, valid_out


def _real_array(name: str, x, ndim: int, layout: str) -> np.ndarray:
    """x as float64 (any real dtype accepted: pixel coordinates are often integers)."""
    if not isinstance(x, np.ndarray) or x.dtype == np.bool_ or \
            not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"{_OP}: {name} must be a numpy array of real numbers {layout}, got "
                        f"{got}")
    if x.ndim != ndim:
        raise ValueError(f"{_OP}: {name} must be {layout}, got shape {x.shape}")
    x = x.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{_OP}: {name} must be finite, got {x[~np.isfinite(x)][0]}")
    return x


def _label_array(labels) -> np.ndarray:
    if not isinstance(labels, np.ndarray) or labels.dtype == np.bool_ or \
            not np.issubdtype(labels.dtype, np.integer):
        got = labels.dtype if isinstance(labels, np.ndarray) else type(labels).__name__
        raise TypeError(f"{_OP}: labels must be an integer numpy array (P, N), got {got}")
    if labels.ndim != 2:
        raise ValueError(f"{_OP}: labels must be (P, N), got shape {labels.shape}")
    bad = ~np.isin(labels, LABELS)
    if bad.any():
        raise ValueError(f"{_OP}: labels must be in {{-10 (absent), -1 (not a point), "
                         f"0 (negative), 1 (positive), 2, 3 (box corners)}}, got "
                         f"{sorted(set(labels[bad].tolist()))[:5]}")
    return labels.astype(np.int64)
