"""The Vision Transformer (model_type "vit", "deit", or a timm ViT / DeiT checkpoint).

    image (B, C, H, W) -> patches: the (H/p) x (W/p) grid of p x p squares, each flattened
    patch embedding:  e_i = W_e vec(patch_i) + b_e         (a conv2d with kernel = stride = p)
    tokens:           x_0 = [cls; (dist;) e_1 .. e_N] + pos   (pos interpolated bicubically
                                                              when the grid is not the trained one)
    per layer (pre-norm):  h = x + Attention(LN1(x))        (every token sees every token)
                           x = h + W2 gelu(W1 LN2(h))      (exact erf GELU)
    final norm:       z = LN(x_L)
    pooler:           tanh(W_p z[:, 0] + b_p)             (ViTModel checkpoints only)
    classifier:       logits = W_c z[:, 0] + b_c          (DeiT with a distillation head:
                      (W_c z[:, 0] + b_c + W_d z[:, 1] + b_d) / 2, as at inference)

The model is pure (arrays in, arrays out); preprocessing and top-k labels live in
fastattn.vision and fastattn.pipelines.image_classification (``model.classify``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...layers import Attention, LayerNorm, Linear, MLP, TransformerBlock, activation_name
from ...ops import conv2d, interpolate
from ..output import ModelOutput
from ..pixels import check_pixel_values
from ..weights import take_listed
from .config import ViTConfig
from .schema import HF_PREFIXES, vit_tensor_shapes


@dataclass
class ViTOutput(ModelOutput):
    """What ``ViTModel(pixel_values)`` returns; ``out["name"]`` works too.

    - logits: (B, num_labels) float32, or None when the checkpoint has no classifier
    - last_hidden_state: (B, T, hidden) after the final LayerNorm; T = num_prefix_tokens + the
      number of patches
    - pooler_output: (B, pooler_output_size) tanh(W z[:, 0] + b), or None without a pooler
    - hidden_states: num_hidden_layers + 1 arrays (B, T, hidden): the embeddings (tokens plus
      positions), then each layer's output before the final norm (output_hidden_states)
    - attentions: num_hidden_layers arrays (B, heads, T, T), each row a probability
      distribution over the T keys (output_attentions)
    """
    logits: np.ndarray | None
    last_hidden_state: np.ndarray
    pooler_output: np.ndarray | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class ViTModel:
    """A Vision Transformer built from a checkpoint: ``fastattn.load(directory)`` or
    ``ViTModel.from_weights(config, tensors)``. See the module docstring for the equations."""

    def __init__(self, config: ViTConfig, patch: tuple, prefix: np.ndarray,
                 positions: np.ndarray, blocks: list, norm: LayerNorm,
                 pooler: Linear | None = None, heads: tuple = ()):
        self.config = config
        # the patch projection as a convolution: weight (hidden, C, ph, pw), bias (hidden,)
        self.patch_weight, self.patch_bias = patch
        self.prefix = prefix            # (num_prefix_tokens, hidden): [CLS] (and distillation)
        self.positions = positions      # (num_prefix_tokens + gh * gw, hidden)
        self.blocks, self.norm, self.pooler, self.heads = blocks, norm, pooler, heads
        self.num_layers = len(blocks)

    # ------------------------------------------------------------------------------ building
    @classmethod
    def from_weights(cls, config, source, weights: str = "float32") -> "ViTModel":
        """Builds the model from ``config`` (a ViTConfig or a config.json dict, either layout)
        and ``source``, a mapping of checkpoint names to arrays: the tensors vit_tensor_shapes
        lists (the Hugging Face prefix, pooler and classifier found from the names). Raises
        ValueError for an invalid config, a missing tensor, a wrong shape, or a tensor the
        model does not use. ``weights``: the format of the Linear layers' matrices (blocks,
        pooler, classifier heads; fastattn.models.weights); the patch convolution, tokens,
        positions and norms stay float32."""
        c = ViTConfig.of(config)
        names = set(source.keys())
        if c.layout == "timm":
            shapes = vit_tensor_shapes(c, classifier="head.weight" in names)
            t = take_listed(source, shapes, weights=weights)
            return cls._build(c, t, _timm_names(c, t))
        prefix = next((p for p in HF_PREFIXES if any(n.startswith(p) for n in names)), "")
        classifier = any(n in names for n in ("classifier.weight", "cls_classifier.weight"))
        shapes = vit_tensor_shapes(c, prefix=prefix, classifier=classifier,
                                   pooler=prefix + "pooler.dense.weight" in names,
                                   distillation_head="cls_classifier.weight" in names)
        # mask_token: ViTModel(use_mask_token=True)'s masked-image-modelling input, unused
        t = take_listed(source, shapes, ignore=("embeddings.mask_token",), weights=weights)
        return cls._build(c, t, _hf_names(c, t, prefix))

    @classmethod
    def _build(cls, c: ViTConfig, t: dict, n: dict) -> "ViTModel":
        """The model from tensors ``t`` and ``n``, the layout's name of each part."""
        d, heads, eps = c.hidden_size, c.num_attention_heads, c.layer_norm_eps
        act = activation_name(c.hidden_act)

        def dense(name):
            return t.linear(name)

        def layer_norm(name):
            return LayerNorm(t[name + ".weight"], t[name + ".bias"], eps)

        blocks = []
        for i in range(c.num_hidden_layers):
            b = {k: v.format(i=i) for k, v in n["block"].items()}
            if "qkv" in b:      # timm: q, k, v already fused, rows [q; k; v]
                qkv = dense(b["qkv"])
            else:
                qkv = t.linear([b[x] for x in ("q", "k", "v")])
            attn = Attention(qkv, dense(b["o"]), heads, heads, d // heads, causal=False)
            mlp = MLP(dense(b["fc1"]), dense(b["fc2"]), act)
            blocks.append(TransformerBlock(attn, mlp, layer_norm(b["norm1"]),
                                           layer_norm(b["norm2"]), prenorm=True))
        patch = (t[n["patch"] + ".weight"], t[n["patch"] + ".bias"])
        prefix = np.concatenate([t[name].reshape(1, d) for name in n["prefix"]])
        positions = np.ascontiguousarray(t[n["positions"]].reshape(-1, d))
        pooler = dense(n["pooler"]) if n["pooler"] + ".weight" in t else None
        heads_ = tuple(dense(h) for h in n["heads"] if h + ".weight" in t)
        return cls(c, patch, prefix, positions, blocks, layer_norm(n["norm"]), pooler, heads_)

    # ------------------------------------------------------------------------------ forward
    def _pixels(self, pixel_values) -> np.ndarray:
        """pixel_values checked: (B, C, H, W) float32, C the config's, H and W multiples of the
        patch size (at least one patch); any strides (copied when not C-contiguous)."""
        c = self.config
        return check_pixel_values("vit", pixel_values, c.num_channels, c.patch_hw,
                                  f"resize or crop it first; the model was trained at "
                                  f"{c.image_hw[0]}x{c.image_hw[1]}")

    def position_embeddings(self, gh: int, gw: int) -> np.ndarray:
        """The position embeddings (num_prefix_tokens + gh * gw, hidden) for a gh x gw patch
        grid: the checkpoint's for its own grid, else its patch rows resized bicubically
        (align_corners=False) as an image of `hidden` channels, the prefix rows unchanged:
        transformers' interpolate_pos_encoding."""
        c = self.config
        if (gh, gw) == c.grid:
            return self.positions
        p, d = c.num_prefix_tokens, c.hidden_size
        g0h, g0w = c.grid
        grid = self.positions[p:].reshape(1, g0h, g0w, d).transpose(0, 3, 1, 2)
        resized = interpolate(np.ascontiguousarray(grid), size=(gh, gw), mode="bicubic",
                              align_corners=False)
        return np.concatenate([self.positions[:p],
                               resized[0].reshape(d, gh * gw).T]).astype(np.float32, copy=False)

    def embeddings(self, pixel_values, interpolate_pos_encoding: bool | None = None
                   ) -> np.ndarray:
        """The tokens entering the first layer (B, T, hidden): [CLS] (and the distillation
        token) and the patch embeddings, plus the position embeddings.

        interpolate_pos_encoding: None (default) resizes the position embeddings whenever the
        image's patch grid differs from the checkpoint's; False refuses such images (as
        transformers does by default); True is the same as None (transformers' flag)."""
        if interpolate_pos_encoding not in (None, True, False):
            raise TypeError(f"vit: interpolate_pos_encoding must be None, True or False, got "
                            f"{interpolate_pos_encoding!r}")
        x = self._pixels(pixel_values)
        c = self.config
        b, ch, h, w = x.shape
        (ph, pw), p, d = c.patch_hw, c.num_prefix_tokens, c.hidden_size
        gh, gw = h // ph, w // pw
        if interpolate_pos_encoding is False and (h, w) != c.image_hw:
            raise ValueError(f"vit: image size {h}x{w} differs from the model's "
                             f"{c.image_hw[0]}x{c.image_hw[1]} and interpolate_pos_encoding is "
                             "False (pass None or True to resize the position embeddings)")
        pos = self.position_embeddings(gh, gw)
        # the patch embedding: a convolution with kernel = stride = patch (conv2d's fast path:
        # space-to-depth and one matmul), (B, D, gh, gw); its channels become the tokens' last
        # axis in the same pass that adds the positions
        e = conv2d(x, self.patch_weight, self.patch_bias, stride=(ph, pw))
        tokens = np.empty((b, p + gh * gw, d), np.float32)
        tokens[:, :p] = self.prefix + pos[:p]
        np.add(e.reshape(b, d, gh * gw).transpose(0, 2, 1), pos[p:], out=tokens[:, p:])
        return tokens

    def __call__(self, pixel_values, output_attentions: bool = False,
                 output_hidden_states: bool = False, *,
                 interpolate_pos_encoding: bool | None = None) -> ViTOutput:
        """Runs the model on pixel_values (B, C, H, W) float32 (normalised as the checkpoint
        expects; fastattn.vision prepares images). H and W: multiples of the patch size; other
        sizes than the checkpoint's resize the position embeddings (see ``embeddings``).
        Returns a :class:`ViTOutput`."""
        x = self.embeddings(pixel_values, interpolate_pos_encoding)
        # each layer's output is kept only when asked for: otherwise the one alive is the
        # residual stream (activation memory of one layer, not of L)
        hidden, attentions = [x] if output_hidden_states else [], []
        for block in self.blocks:
            if output_attentions:
                x, probs = block(x, return_weights=True)
                attentions.append(probs)
            else:
                x = block(x)
            if output_hidden_states:
                hidden.append(x)
        z = self.norm(x)
        cls = np.ascontiguousarray(z[:, 0])
        return ViTOutput(
            logits=self._logits(z, cls),
            last_hidden_state=z,
            pooler_output=None if self.pooler is None else np.tanh(self.pooler(cls)),
            hidden_states=tuple(hidden) if output_hidden_states else None,
            attentions=tuple(attentions) if output_attentions else None)

    def _logits(self, z: np.ndarray, cls: np.ndarray) -> np.ndarray | None:
        if not self.heads:
            return None
        logits = self.heads[0](cls)
        if len(self.heads) == 2:    # DeiT: the [CLS] head and the distillation head, averaged
            logits += self.heads[1](np.ascontiguousarray(z[:, 1]))
            logits *= 0.5
        return logits

    def classify(self, images, top_k: int = 5):
        """``fastattn.pipelines.image_classification.classify(self, images, top_k)``."""
        from ...pipelines.image_classification import classify
        return classify(self, images, top_k=top_k)


def _hf_names(c: ViTConfig, t: dict, prefix: str) -> dict:
    e, layer = prefix + "embeddings.", prefix + "encoder.layer.{i}."
    a = layer + "attention."
    return {
        "patch": e + "patch_embeddings.projection",
        "prefix": [e + "cls_token"] + ([e + "distillation_token"]
                                       if c.num_prefix_tokens == 2 else []),
        "positions": e + "position_embeddings",
        "block": {"q": a + "attention.query", "k": a + "attention.key",
                  "v": a + "attention.value", "o": a + "output.dense",
                  "norm1": layer + "layernorm_before", "norm2": layer + "layernorm_after",
                  "fc1": layer + "intermediate.dense", "fc2": layer + "output.dense"},
        "norm": prefix + "layernorm",
        "pooler": prefix + "pooler.dense",
        "heads": (["cls_classifier", "distillation_classifier"] if "cls_classifier.weight" in t
                  else ["classifier"]),
    }


def _timm_names(c: ViTConfig, t: dict) -> dict:
    b = "blocks.{i}."
    return {
        "patch": "patch_embed.proj",
        "prefix": ["cls_token"] + (["dist_token"] if c.num_prefix_tokens == 2 else []),
        "positions": "pos_embed",
        "block": {"qkv": b + "attn.qkv", "o": b + "attn.proj", "norm1": b + "norm1",
                  "norm2": b + "norm2", "fc1": b + "mlp.fc1", "fc2": b + "mlp.fc2"},
        "norm": "norm",
        "pooler": "pooler",     # timm has none
        "heads": ["head", "head_dist"],
    }
