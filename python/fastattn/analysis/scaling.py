"""Chinchilla's scaling law and the compute-optimal split of a training budget.

Hoffmann et al. 2022, "Training Compute-Optimal Large Language Models" (arXiv:2203.15556),
approach 3 (section 3.3, a parametric fit of the final losses of their ~400 training runs):

    L(N, D) = E + A / N^alpha + B / D^beta
    E = 1.69, A = 406.4, B = 410.7, alpha = 0.34, beta = 0.28

N: parameters, D: training tokens, L: the loss in nats per token on their data set. A training
run costs C ~ 6 N D FLOPs (2 N per token forward, 4 N backward). Minimising L under
6 N D = C (Lagrange, or substituting D = C / (6 N) and setting dL/dN = 0) gives the paper's
closed form (its equation (4)):

    N_opt(C) = G (C / 6)^(beta / (alpha + beta)),   D_opt(C) = G^-1 (C / 6)^(alpha / (alpha + beta))
    G = (alpha A / (beta B))^(1 / (alpha + beta))

so D_opt = C / (6 N_opt). With these constants a = beta / (alpha + beta) = 0.452: parameters
grow as C^0.45 and tokens as C^0.55 (approach 3's exponents; approaches 1 and 2 give ~0.5 each).
"""
from __future__ import annotations

import dataclasses

# approach 3's fitted constants (Hoffmann et al. 2022, section 3.3)
E, A, B, ALPHA, BETA = 1.69, 406.4, 410.7, 0.34, 0.28


def chinchilla_loss(params: float, tokens: float) -> float:
    """L(N, D) = E + A / N^alpha + B / D^beta (module docstring), in nats per token."""
    if params <= 0 or tokens <= 0:
        raise ValueError(f"chinchilla_loss: params and tokens must be > 0, got {params!r}, "
                         f"{tokens!r}")
    return E + A / params ** ALPHA + B / tokens ** BETA


@dataclasses.dataclass(frozen=True)
class ComputeOptimal:
    """The compute-optimal model for a budget of ``flops``: ``params`` N, ``tokens`` D
    (6 N D = flops), the predicted ``loss`` L(N, D), and ``tokens_per_param`` D / N."""
    flops: float
    params: float
    tokens: float
    loss: float

    @property
    def tokens_per_param(self) -> float:
        return self.tokens / self.params


def compute_optimal(flops: float) -> ComputeOptimal:
    """N_opt, D_opt and the loss for a training budget of ``flops`` (C ~ 6 N D), from the
    closed form of the module docstring."""
    if not flops > 0:
        raise ValueError(f"compute_optimal: flops must be > 0, got {flops!r}")
    g = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA))
    n = g * (flops / 6) ** (BETA / (ALPHA + BETA))
    d = flops / (6 * n)
    return ComputeOptimal(flops, n, d, chinchilla_loss(n, d))
