"""Segment Anything's mask decoder: image embedding + prompt embeddings -> mask logits and IoU.

    tokens  = [IoU token, m mask tokens, sparse prompt tokens]          (P, 1 + m + n, C)
    image   = image embedding + dense prompt embedding (per prompt)    (P, C, h, w)
    q, k    = TwoWayTransformer(tokens, image, image pe)
    up      = GELU(ConvT2(GELU(LN2d(ConvT1(k)))))                       (P, C/8, 4h, 4w)
              ConvT: transposed conv 2x2 stride 2 (C -> C/4 -> C/8)
    mask_i  = MLP_i(q[1 + i]) . up      (hypernetwork: 3 layers, ReLU; one per mask token)
    iou     = MLP_iou(q[0])             (iou_head_depth layers, ReLU, no sigmoid)
    output  = masks / iou 1..m-1 when multimask_output, else mask / iou 0 (as the reference)

Both transposed convolutions have kernel = stride = 2: each input pixel maps to its own 2x2
output block, so each is one matmul over the channels-last pixels (x (P, N, C) @ W (C, 2*2*C'))
whose output rows are the 2x2 blocks' pixels; LayerNorm2d then normalises the last axis in
place, and the second matmul takes the GELU in its epilogue. The pixel order (i, j, a, b, c, d)
is undone once, on the final masks: row 4i + 2a + c, column 4j + 2b + d.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...activation_names import activation_name
from ...layers import MLP, Attention, LayerNorm, Linear
from ...ops import gelu, layer_norm, matmul
from .config import SamDecoderConfig
from .two_way import TwoWayBlock, TwoWayTransformer

_OP = "SamMaskDecoder"
# norms whose eps the config does not set: torch's nn.LayerNorm default for the two-way
# transformer's final norm (official code and transformers alike), LayerNorm2d's 1e-6
FINAL_NORM_EPS = 1e-5
LAYER_NORM_2D_EPS = 1e-6


class _Tensors:
    """Shape-checked float32 tensors of the decoder's weights, by name."""

    def __init__(self, weights: Mapping[str, np.ndarray]):
        self.weights, self.used = weights, set()

    def __call__(self, name, shape):
        if name not in self.weights:
            raise ValueError(f"{_OP}: missing tensor {name!r}")
        a = np.ascontiguousarray(self.weights[name], dtype=np.float32)
        if a.shape != tuple(shape):
            raise ValueError(f"{_OP}: tensor {name!r} has shape {a.shape}, expected "
                             f"{tuple(shape)}")
        self.used.add(name)
        return a

    def linear(self, name, n_in, n_out):
        return Linear(self(name + ".weight", (n_out, n_in)), self(name + ".bias", (n_out,)))

    def norm(self, name, n, eps):
        return LayerNorm(self(name + ".weight", (n,)), self(name + ".bias", (n,)), eps)

    def attention(self, name, c, inner, heads):
        lin = {p: self.linear(f"{name}.{p}_proj", c, inner) for p in ("q", "k", "v")}
        return Attention.separate(lin["q"], lin["k"], lin["v"],
                                  self.linear(name + ".out_proj", inner, c), heads,
                                  inner // heads)

    def feed_forward(self, name, n_in, hidden, n_out, depth):
        """proj_in, depth - 2 hidden layers, proj_out (ReLU between)."""
        return ([self.linear(name + ".proj_in", n_in, hidden)]
                + [self.linear(f"{name}.layers.{j}", hidden, hidden) for j in range(depth - 2)]
                + [self.linear(name + ".proj_out", hidden, n_out)])

    def upsampler(self, name, c_in, c_out):
        """A 2x2 stride-2 transposed conv (weight (C_in, C_out, 2, 2)) as a Linear C_in ->
        (a, b, C_out): column (2a + b) C_out + o holds W[:, o, a, b]."""
        w = self(name + ".weight", (c_in, c_out, 2, 2))
        b = self(name + ".bias", (c_out,))
        return Linear(np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(c_in, 4 * c_out)),
                      np.tile(b, 4), layout="in_out")


def _run_mlp(layers: list, x: np.ndarray) -> np.ndarray:
    for layer in layers[:-1]:
        x = layer(x, activation="relu")
    return layers[-1](x)


class SamMaskDecoder:
    """Built from the mask decoder's tensors (Hugging Face names without "mask_decoder.") and a
    SamDecoderConfig. See the module docstring for the equations."""

    def __init__(self, weights: Mapping[str, np.ndarray], config: SamDecoderConfig):
        c = config
        self.config = c
        d, heads, eps = c.hidden_size, c.num_attention_heads, c.layer_norm_eps
        inner = d // c.attention_downsample_rate
        self.num_mask_tokens = m = c.num_multimask_outputs + 1
        t = _Tensors(weights)
        self.output_tokens = np.concatenate([t("iou_token.weight", (1, d)),
                                             t("mask_tokens.weight", (m, d))])
        act = activation_name(c.hidden_act)
        blocks = []
        for i in range(c.num_hidden_layers):
            L = f"transformer.layers.{i}."
            blocks.append(TwoWayBlock(
                t.attention(L + "self_attn", d, d, heads), t.norm(L + "layer_norm1", d, eps),
                t.attention(L + "cross_attn_token_to_image", d, inner, heads),
                t.norm(L + "layer_norm2", d, eps),
                MLP(t.linear(L + "mlp.lin1", d, c.mlp_dim), t.linear(L + "mlp.lin2", c.mlp_dim, d),
                    act),
                t.norm(L + "layer_norm3", d, eps),
                t.attention(L + "cross_attn_image_to_token", d, inner, heads),
                t.norm(L + "layer_norm4", d, eps), skip_first_layer_pe=(i == 0)))
        self.transformer = TwoWayTransformer(
            blocks, t.attention("transformer.final_attn_token_to_image", d, inner, heads),
            t.norm("transformer.layer_norm_final_attn", d, FINAL_NORM_EPS))
        c4, c8 = d // 4, d // 8
        self.upscale1 = t.upsampler("upscale_conv1", d, c4)
        self.upscale_norm = (t("upscale_layer_norm.weight", (c4,)),
                             t("upscale_layer_norm.bias", (c4,)))
        self.upscale2 = t.upsampler("upscale_conv2", c4, c8)
        self.hypernetworks = [t.feed_forward(f"output_hypernetworks_mlps.{i}", d, d, c8, 3)
                              for i in range(m)]
        self.iou_head = t.feed_forward("iou_prediction_head", d, c.iou_head_hidden_dim, m,
                                       c.iou_head_depth)
        extra = sorted(set(weights.keys()) - t.used)
        if extra:
            raise ValueError(f"{_OP}: unexpected tensor(s) {extra[:5]}")

    # ---------------------------------------------------------------------------- checking
    def _inputs(self, image_embeddings, image_pe, sparse, dense, sparse_valid):
        d = self.config.hidden_size
        for name, x in (("image_embeddings", image_embeddings), ("image_pe", image_pe),
                        ("sparse", sparse), ("dense", dense)):
            if not isinstance(x, np.ndarray) or x.dtype != np.float32:
                got = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
                raise TypeError(f"{_OP}: {name} must be a float32 numpy array, got {got}")
        if sparse.ndim != 3 or sparse.shape[2] != d or sparse.shape[0] < 1:
            raise ValueError(f"{_OP}: sparse must be (P, n, {d}) with P >= 1, got shape "
                             f"{sparse.shape}")
        p = sparse.shape[0]
        if dense.ndim != 4 or dense.shape[:2] != (p, d):
            raise ValueError(f"{_OP}: dense must be (P, C, h, w) = ({p}, {d}, h, w) (P from "
                             f"sparse), got shape {dense.shape}")
        hw = dense.shape[2:]
        if image_embeddings.ndim != 4 or image_embeddings.shape[0] not in (1, p) or \
                image_embeddings.shape[1:] != (d,) + hw:
            raise ValueError(f"{_OP}: image_embeddings must be (1 or P, C, h, w) = (1 or {p}, "
                             f"{d}, {hw[0]}, {hw[1]}), got shape {image_embeddings.shape}")
        if image_pe.shape != (1, d) + hw:
            raise ValueError(f"{_OP}: image_pe must be (1, C, h, w) = (1, {d}, {hw[0]}, "
                             f"{hw[1]}), got shape {image_pe.shape}")
        if sparse_valid is not None:
            if not isinstance(sparse_valid, np.ndarray) or sparse_valid.dtype != np.bool_:
                got = (sparse_valid.dtype if isinstance(sparse_valid, np.ndarray)
                       else type(sparse_valid).__name__)
                raise TypeError(f"{_OP}: sparse_valid must be a bool numpy array (P, n), got "
                                f"{got}")
            if sparse_valid.shape != sparse.shape[:2]:
                raise ValueError(f"{_OP}: sparse_valid must be (P, n) = {sparse.shape[:2]}, got "
                                 f"shape {sparse_valid.shape}")
        return p, hw

    # ----------------------------------------------------------------------------- forward
    def __call__(self, image_embeddings, image_pe, sparse, dense, multimask_output: bool,
                 sparse_valid=None):
        """(low_res_masks (P, M, 4h, 4w), iou_scores (P, M)) for P prompts on one image.

        image_embeddings (1 or P, C, h, w), image_pe (1, C, h, w), sparse (P, n, C), dense
        (P, C, h, w) (a stride-0 broadcast over P, as the prompt encoder returns without
        masks, lets every prompt share the first block's image-token projections),
        sparse_valid (P, n) bool (False: an absent token, never attended). M =
        num_multimask_outputs (masks 1..) if multimask_output else 1 (mask 0)."""
        if not isinstance(multimask_output, (bool, np.bool_)):
            raise TypeError(f"{_OP}: multimask_output must be a bool, got "
                            f"{type(multimask_output).__name__}")
        p, (h, w) = self._inputs(image_embeddings, image_pe, sparse, dense, sparse_valid)
        d, m = self.config.hidden_size, self.num_mask_tokens
        n = sparse.shape[1]
        tokens = np.empty((p, 1 + m + n, d), np.float32)
        tokens[:, :1 + m] = self.output_tokens
        tokens[:, 1 + m:] = sparse
        token_mask = None
        if sparse_valid is not None and not sparse_valid.all():
            token_mask = np.ones((p, 1 + m + n), bool)
            token_mask[:, 1 + m:] = sparse_valid
        # the image tokens, channels-last; once for every prompt when neither the image nor
        # the dense embedding differs between prompts
        shared = image_embeddings.shape[0] == 1 and (p == 1 or dense.strides[0] == 0)
        src = image_embeddings + (dense[:1] if shared else dense)      # (1 or P, C, h, w)
        image = np.ascontiguousarray(src.reshape(src.shape[0], d, h * w).transpose(0, 2, 1))
        pe = np.ascontiguousarray(image_pe.reshape(1, d, h * w).transpose(0, 2, 1))
        q, k = self.transformer(tokens, image, pe, token_mask)
        if k.shape[0] != p:     # no block ran and the image was shared
            k = np.broadcast_to(k, (p,) + k.shape[1:])

        chosen = range(1, m) if multimask_output else range(1)
        masks = self._masks(k, q[:, 1:1 + m], chosen, h, w)
        iou = _run_mlp(self.iou_head, np.ascontiguousarray(q[:, 0]))
        return masks, np.ascontiguousarray(iou[:, chosen.start:chosen.stop])

    def _masks(self, k, mask_tokens, chosen, h, w):
        """Upscaled image tokens (P, 16 h w, C/8) in pixel order (i, j, a, b, c, d), dotted
        with each chosen mask token's hypernetwork output -> (P, M, 4h, 4w)."""
        p = k.shape[0]
        c4 = self.upscale_norm[0].shape[0]
        x = self.upscale1(k).reshape(p, 4 * h * w, c4)          # (P, (i, j, a, b), C/4)
        layer_norm(x, *self.upscale_norm, LAYER_NORM_2D_EPS, out=x)
        gelu(x, out=x)
        x = self.upscale2(x, activation="gelu")                 # (P, (i, j, a, b), (c, d, C/8))
        x = x.reshape(p, 16 * h * w, -1)
        hyper = np.stack([_run_mlp(self.hypernetworks[i], np.ascontiguousarray(mask_tokens[:, i]))
                          for i in chosen], axis=1)             # (P, M, C/8)
        masks = matmul(hyper, x, transpose_b=True)              # (P, M, 16 h w)
        mm = masks.shape[1]
        masks = masks.reshape(p, mm, h, w, 2, 2, 2, 2).transpose(0, 1, 2, 4, 6, 3, 5, 7)
        return np.ascontiguousarray(masks).reshape(p, mm, 4 * h, 4 * w)
