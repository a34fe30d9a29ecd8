"""SAM's image encoder: a ViTDet backbone and its neck.

    pixels (B, 3, S, S), normalised and padded      (S = 1024: a 64 x 64 grid of 16 px patches)
    tokens  x = conv_p(pixels) + pos                 (kernel = stride = p; kept channels-last
                                                      (B, g, g, D) from here to the neck)
    per block (pre-norm):
        h = x + proj(attn(LN1(x)))                   attention within ws x ws windows, or over
                                                     the whole grid in the global blocks
        x = h + lin2(gelu(lin1(LN2(h))))             (exact erf GELU)
    neck: LN2d(conv3x3(LN2d(conv1x1(x))))            both convs without bias -> (B, 256, g, g)

Windowed blocks zero-pad the NORMALISED grid on the bottom / right to a multiple of the window
(64 -> 70 for 14) and attend within each window WITHOUT masking the padding: a padded token's
input is 0, so its key and value are the qkv bias, and real queries attend to it as the
reference does; the padded outputs are dropped. The qkv projection runs on the real tokens
only (the padding's rows are the bias, filled in) and the output projection after the
windows are put back, with the residual in its epilogue. Every block adds the decomposed
relative-position bias (models/sam/rel_pos.py) inside the attention kernel.

Images of another size than the config's (a multiple of the patch) are accepted: the
absolute position embedding is resized bicubically (align_corners=False, as ViTDet's
get_abs_pos) and the global blocks' rel-pos tables linearly (the reference's get_rel_pos).
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ...layers import LayerNorm, Linear, MLP
from ...activation_names import activation_name
from ...ops import attention, conv2d, interpolate
from ..pixels import check_pixel_values
from ..weights import take_listed
from .config import SamVisionConfig
from .rel_pos import RelPosTables
from .schema import vision_shapes

NECK_EPS = 1e-6     # the neck's LayerNorm2d: eps 1e-6 in both layouts, not in the config


class SamImageEncoder:
    """``SamImageEncoder(weights, config)``: ``weights`` maps the image encoder's Hugging Face
    names without the "vision_encoder." prefix (patch_embed.projection.weight, layers.N....)
    to arrays; ``config`` a SamVisionConfig. ValueError names a missing tensor, a wrong shape,
    or a tensor the encoder does not use."""

    def __init__(self, weights: Mapping, config: SamVisionConfig,
                 weight_format: str = "float32"):
        if not isinstance(config, SamVisionConfig):
            raise TypeError(f"SamImageEncoder: config must be a SamVisionConfig, got "
                            f"{type(config).__name__}")
        v = self.config = config
        # weight_format: the blocks' Linear matrices (qkv, proj, MLP; fastattn.models.weights);
        # the patch and neck convolutions, positions and norms stay float32
        t = take_listed(weights, vision_shapes(v), weights=weight_format)
        self.patch_weight = t["patch_embed.projection.weight"]
        self.patch_bias = t["patch_embed.projection.bias"]
        # (1, g, g, D) -> (g, g, D): added to the channels-last patch grid
        self.pos_embed = t["pos_embed"][0] if v.use_abs_pos else None
        self._pos_cache: dict[tuple[int, int], np.ndarray] = {}
        act = activation_name(v.hidden_act, "sam image encoder")
        self.blocks = [_Block(t, f"layers.{i}.", v, v.window_of(i), act)
                       for i in range(v.num_hidden_layers)]
        self.neck_conv1 = Linear(t["neck.conv1.weight"].reshape(v.output_channels, -1))
        self.neck_norm1 = LayerNorm(t["neck.layer_norm1.weight"], t["neck.layer_norm1.bias"],
                                    NECK_EPS)
        self.neck_conv2 = t["neck.conv2.weight"]
        self.neck_norm2 = LayerNorm(t["neck.layer_norm2.weight"], t["neck.layer_norm2.bias"],
                                    NECK_EPS)

    # ------------------------------------------------------------------------------ forward
    def _pixels(self, pixel_values) -> np.ndarray:
        v = self.config
        return check_pixel_values("sam image encoder", pixel_values, v.num_channels,
                                  (v.patch_size, v.patch_size),
                                  f"the model takes {v.image_size}x{v.image_size}: resize the "
                                  f"longest side and pad")

    def position_embedding(self, gh: int, gw: int) -> np.ndarray:
        """The (gh, gw, D) absolute position embedding: the checkpoint's for its own grid, else
        resized bicubically (align_corners=False) as a D-channel image."""
        g = self.config.grid
        if (gh, gw) == (g, g):
            return self.pos_embed
        if (gh, gw) not in self._pos_cache:
            image = np.ascontiguousarray(self.pos_embed.transpose(2, 0, 1))[None]
            resized = interpolate(image, size=(gh, gw), mode="bicubic", align_corners=False)
            self._pos_cache[(gh, gw)] = np.ascontiguousarray(resized[0].transpose(1, 2, 0))
        return self._pos_cache[(gh, gw)]

    def embed(self, pixel_values) -> np.ndarray:
        """The tokens entering the first block, channels-last (B, gh, gw, D)."""
        x = self._pixels(pixel_values)
        v = self.config
        p = v.patch_size
        gh, gw = x.shape[2] // p, x.shape[3] // p
        # kernel = stride = p: conv2d's space-to-depth + one matmul, (B, D, gh, gw); its
        # channels move last in the same pass that adds the positions
        e = conv2d(x, self.patch_weight, self.patch_bias, stride=p)
        tokens = np.empty((x.shape[0], gh, gw, v.hidden_size), np.float32)
        if self.pos_embed is None:
            np.copyto(tokens, e.transpose(0, 2, 3, 1))
        else:
            np.add(e.transpose(0, 2, 3, 1), self.position_embedding(gh, gw), out=tokens)
        return tokens

    def neck(self, x: np.ndarray) -> np.ndarray:
        """(B, g, g, D) channels-last -> (B, C_out, g, g): conv1x1 (a matmul over the
        channels) -> LayerNorm2d (a LayerNorm over the channels, the last axis here) ->
        conv3x3 (pad 1) -> LayerNorm2d."""
        y = self.neck_norm1(self.neck_conv1(x))
        y = conv2d(np.ascontiguousarray(y.transpose(0, 3, 1, 2)), self.neck_conv2, padding=1)
        y = self.neck_norm2(np.ascontiguousarray(y.transpose(0, 2, 3, 1)))
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))

    def __call__(self, pixel_values) -> np.ndarray:
        """pixel_values (B, C, S, S) float32, normalised and padded -> image embeddings
        (B, C_out, S / p, S / p)."""
        x = self.embed(pixel_values)
        for block in self.blocks:
            x = block(x)
        return self.neck(x)


class _Block:
    """One pre-norm ViTDet block; ``window`` 0 attends over the whole grid."""

    def __init__(self, t: dict, p: str, v: SamVisionConfig, window: int, act: str):
        def norm(name):
            return LayerNorm(t[p + name + ".weight"], t[p + name + ".bias"], v.layer_norm_eps)

        def dense(name):
            return t.linear(p + name)

        self.norm1, self.norm2 = norm("layer_norm1"), norm("layer_norm2")
        self.qkv, self.proj = dense("attn.qkv"), dense("attn.proj")
        self.mlp = MLP(dense("mlp.lin1"), dense("mlp.lin2"), act)
        self.heads, self.head_dim, self.window = v.num_attention_heads, v.head_dim, window
        self.rel = (RelPosTables(t[p + "attn.rel_pos_h"], t[p + "attn.rel_pos_w"])
                    if v.use_rel_pos else None)

    def attend(self, qkv: np.ndarray, h: int, w: int) -> np.ndarray:
        """Self-attention within each of the B' grids of qkv (B', h w, 3 D) (rows [q | k | v],
        as the qkv projection writes them): heads as views (no copy) -> attention with the
        rel-pos terms added in the kernel -> (B', h w, H, hd), the heads side by side."""
        bw, n, _ = qkv.shape
        heads, hd = self.heads, self.head_dim
        qkv = qkv.reshape(bw, n, 3, heads, hd)
        q, k, v = (qkv[:, :, i].transpose(0, 2, 1, 3) for i in range(3))   # (B', H, n, hd)
        rel_pos = None if self.rel is None else self.rel.terms(q, h, w)
        ctx = np.empty((bw, n, heads, hd), np.float32)      # written head by head in place
        attention(q, k, v, rel_pos=rel_pos, out=ctx.transpose(0, 2, 1, 3))
        return ctx

    def __call__(self, x: np.ndarray) -> np.ndarray:
        b, h, w, d = x.shape
        ws = self.window
        qkv = self.qkv(self.norm1(x))                       # (B, h, w, 3D)
        if ws == 0:
            ctx = self.attend(qkv.reshape(b, h * w, 3 * d), h, w).reshape(b, h, w, d)
        else:
            ctx = self.windowed(qkv, ws)
        # x = x + proj(ctx), then x + lin2(gelu(lin1(LN2(x)))): the residuals and the GELU
        # in the matmul epilogues
        x = self.proj(ctx, residual=x)
        return self.mlp(self.norm2(x), residual=x)

    def windowed(self, qkv: np.ndarray, ws: int) -> np.ndarray:
        """Attention within ws x ws windows of the (B, h, w, 3D) grid of q, k, v, as the
        reference computes it: the grid zero-padded after LN1 to (nh ws, nw ws), the padded
        tokens attended unmasked, their outputs dropped. A padded token's input is 0, so its
        q, k, v are the qkv bias: the projection runs on the h w real tokens only and the
        padding is filled with the bias (the reference projects the padding too: 64 -> 70
        is 19.6 % more rows). Returns the real tokens' outputs (B, h, w, D)."""
        b, h, w, d3 = qkv.shape
        nh, nw = -(-h // ws), -(-w // ws)
        bias = self.qkv.bias if self.qkv.bias is not None else np.zeros(d3, np.float32)
        win = np.empty((b, nh, nw, ws, ws, d3), np.float32)
        spans = [(i, j, i * ws, min(h, (i + 1) * ws), j * ws, min(w, (j + 1) * ws))
                 for i in range(nh) for j in range(nw)]
        # window by window in NumPy (no kernel call: each would be a thread-pool round trip)
        for i, j, y0, y1, x0, x1 in spans:
            r, c = y1 - y0, x1 - x0
            win[:, i, j, :r, :c] = qkv[:, y0:y1, x0:x1]
            if r < ws:
                win[:, i, j, r:] = bias
            if c < ws:
                win[:, i, j, :r, c:] = bias
        ctx = self.attend(win.reshape(b * nh * nw, ws * ws, d3), ws, ws)
        ctx = ctx.reshape(b, nh, nw, ws, ws, d3 // 3)
        out = np.empty((b, h, w, d3 // 3), np.float32)
        for i, j, y0, y1, x0, x1 in spans:
            out[:, y0:y1, x0:x1] = ctx[:, i, j, :y1 - y0, :x1 - x0]
        return out
