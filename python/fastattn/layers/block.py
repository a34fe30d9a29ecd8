"""TransformerBlock: attention + feed-forward, each with a residual connection, pre-norm
(GPT-2, LLaMA, ViT) or post-norm (BERT)."""
from __future__ import annotations

import numpy as np


class TransformerBlock:
    def __init__(self, attn, mlp, norm1, norm2, prenorm: bool = True):
        self.attn, self.mlp, self.norm1, self.norm2, self.prenorm = attn, mlp, norm1, norm2, prenorm

    def __call__(self, x: np.ndarray, **attn_kwargs) -> np.ndarray:
        if self.prenorm:
            # h = x + attn(norm1(x)); out = h + mlp(norm2(h)); residuals fused into the matmuls
            h = self.attn(self.norm1(x), residual=x, **attn_kwargs)
            return self.mlp(self.norm2(h), residual=h)
        # post-norm: h = norm1(x + attn(x)); out = norm2(h + mlp(h))
        h = self.norm1(self.attn(x, residual=x, **attn_kwargs))
        return self.norm2(self.mlp(h, residual=h))
