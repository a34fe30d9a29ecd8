"""TransformerBlock: attention + feed-forward, each with a residual connection, pre-norm
(GPT-2, LLaMA, ViT) or post-norm (BERT)."""
from __future__ import annotations

import numpy as np


class TransformerBlock:
    def __init__(self, attn, mlp, norm1, norm2, prenorm: bool = True):
        self.attn, self.mlp, self.norm1, self.norm2, self.prenorm = attn, mlp, norm1, norm2, prenorm

    def __call__(self, x: np.ndarray, return_weights: bool = False, **attn_kwargs):
        """The block's output; with return_weights, (output, attention probabilities)."""
        if self.prenorm:
            # h = x + attn(norm1(x)); out = h + mlp(norm2(h)); residuals fused into the matmuls
            a = self.attn(self.norm1(x), residual=x, return_weights=return_weights, **attn_kwargs)
            h, probs = a if return_weights else (a, None)
            out = self.mlp(self.norm2(h), residual=h)
        else:
            # post-norm: h = norm1(x + attn(x)); out = norm2(h + mlp(h))
            a = self.attn(x, residual=x, return_weights=return_weights, **attn_kwargs)
            h, probs = a if return_weights else (a, None)
            h = self.norm1(h)
            out = self.norm2(self.mlp(h, residual=h))
        return (out, probs) if return_weights else out
