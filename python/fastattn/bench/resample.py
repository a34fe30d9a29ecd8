"""Benchmark cases for the resampling ops (issue 13) against torch (and the NumPy reference):
max_pool2d 3x3/2 pad 1 on ResNet's stem output (1, 64, 112, 112); adaptive_avg_pool2d to 1x1
on ResNet-50's last feature map (8, 2048, 7, 7); interpolate bicubic of a ViT-B position grid
(1, 768, 14, 14) to 32x32 (transformers' interpolate_pos_encoding at 512 pixels), and bilinear
upsampling of (1, 3, 256, 256) mask logits to 1024x1024 (SAM's post-processing).

Bytes: input read once plus output written once. Goal: >= 1.0x torch in the same run."""
from __future__ import annotations

import numpy as np

import fastattn
from fastattn import reference

from . import Case, try_import_torch, with_torch

GOAL = ">= 1.0x torch"


def cases(quick: bool = False):
    torch = try_import_torch()
    F = torch.nn.functional if torch is not None else None
    rng = np.random.default_rng(0)

    def case(op, x, out_shape, fa, ref, tf, label):
        out = np.empty(out_shape, np.float32)
        tx = torch.from_numpy(x) if torch is not None else None
        impls = {"fastattn": lambda: fa(x, out), "numpy": lambda: ref(x.astype(np.float64))}
        return Case(op, label, with_torch(torch, impls, lambda: tf(tx)),
                    bytes=x.nbytes + out.nbytes, goal=GOAL)

    N, C, S = (1, 16, 56) if quick else (1, 64, 112)
    x = rng.standard_normal((N, C, S, S), dtype=np.float32)
    yield case("max_pool2d", x, (N, C, S // 2, S // 2),
               lambda x, out: fastattn.max_pool2d(x, 3, 2, 1, out=out),
               lambda x: reference.max_pool2d(x, 3, 2, 1),
               lambda t: F.max_pool2d(t, 3, 2, 1), f"{N}x{C}x{S}x{S} 3x3/2")

    N, C = (2, 256) if quick else (8, 2048)
    x = rng.standard_normal((N, C, 7, 7), dtype=np.float32)
    yield case("adaptive_avg_pool2d", x, (N, C, 1, 1),
               lambda x, out: fastattn.adaptive_avg_pool2d(x, 1, out=out),
               lambda x: reference.adaptive_avg_pool2d(x, 1),
               lambda t: F.adaptive_avg_pool2d(t, 1), f"{N}x{C}x7x7 to 1x1")

    C = 192 if quick else 768
    x = rng.standard_normal((1, C, 14, 14), dtype=np.float32)
    yield case("interpolate", x, (1, C, 32, 32),
               lambda x, out: fastattn.interpolate(x, size=(32, 32), mode="bicubic",
                                                   align_corners=False, out=out),
               lambda x: reference.interpolate(x, size=(32, 32), mode="bicubic"),
               lambda t: F.interpolate(t, size=(32, 32), mode="bicubic", align_corners=False),
               f"1x{C}x14x14 bicubic 32x32")

    S, O = (128, 512) if quick else (256, 1024)
    x = rng.standard_normal((1, 3, S, S), dtype=np.float32)
    yield case("interpolate", x, (1, 3, O, O),
               lambda x, out: fastattn.interpolate(x, size=(O, O), mode="bilinear",
                                                   align_corners=False, out=out),
               lambda x: reference.interpolate(x, size=(O, O), mode="bilinear"),
               lambda t: F.interpolate(t, size=(O, O), mode="bilinear", align_corners=False),
               f"1x3x{S}x{S} bilinear {O}x{O}")
