"""Sinusoidal, ALiBi and random-Fourier position encodings written entry by entry, straight
from the papers (float64): the check on fastattn.position_encodings."""
import math

import numpy as np


def sinusoidal_positions(L, D, base=10000.0):
    """PE[p, 2i] = sin(p / base^(2i/D)), PE[p, 2i+1] = cos(p / base^(2i/D))."""
    pe = np.zeros((L, D))
    for p in range(L):
        for col in range(D):
            i = col // 2
            angle = p / base ** (2 * i / D)
            pe[p, col] = math.sin(angle) if col % 2 == 0 else math.cos(angle)
    return pe


def alibi_slopes(H):
    """Power of two: 2^(-8/H), 2^(-16/H), ..., 2^(-8). Else the closest power of two c below H
    gives its c slopes, and the remaining H - c are the odd-numbered slopes of 2c heads,
    2^(-8 (2j+1) / (2c)), j = 0, 1, ..."""
    c = 2 ** int(math.floor(math.log2(H)))
    slopes = [2.0 ** (-8.0 * (h + 1) / c) for h in range(c)]
    slopes += [2.0 ** (-8.0 * (2 * j + 1) / (2 * c)) for j in range(H - c)]
    return np.array(slopes)


def alibi_bias(Hq, Lq, Lk):
    """bias[h, i, j] = -m_h * (i + Lk - Lq - j): linear in the key's distance behind the query."""
    m = alibi_slopes(Hq)
    bias = np.zeros((Hq, Lq, Lk))
    for h in range(Hq):
        for i in range(Lq):
            for j in range(Lk):
                bias[h, i, j] = -m[h] * ((i + Lk - Lq) - j)
    return bias


def random_fourier(coords01, gaussian_matrix):
    """coords (N, 2) in [0, 1] -> (N, 2F): [sin(2 pi c.G_k) for k] + [cos(2 pi c.G_k) for k],
    c = 2 * coords - 1."""
    G = np.asarray(gaussian_matrix, dtype=np.float64)
    F = G.shape[1]
    out = np.zeros((len(coords01), 2 * F))
    for n, (x, y) in enumerate(coords01):
        cx, cy = 2 * x - 1, 2 * y - 1
        for k in range(F):
            a = 2 * math.pi * (cx * G[0, k] + cy * G[1, k])
            out[n, k], out[n, F + k] = math.sin(a), math.cos(a)
    return out
