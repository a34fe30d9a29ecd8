"""Benchmark cases for conv2d and conv_transpose2d (issue 13) against PyTorch's CPU
convolutions (oneDNN), measured in the same run, and the patch embedding against the
equivalent single matmul.

Goals: conv2d 3x3, 64->64, 56x56, batch 8 >= 1.0x torch; patch embedding 16x16 stride 16 at
1024x1024 (3 -> 768 channels) within 10% of the matmul it amounts to (the "patch matmul"
row: fastattn.matmul of the (768, 3 * 16 * 16) weight by the (3 * 16 * 16, 4096) patch
matrix, already laid out). The numpy column is NumPy's own composition of the same product
(np.matmul on the laid-out im2col matrix, OpenBLAS) where one exists.

``python -m fastattn.bench.conv`` prints the patch embedding's conv / matmul time ratio,
both timed in one run; ``python -m fastattn.bench.conv --cpu`` times every case on one thread
in CPU time against torch (for a machine shared with other jobs, where wall times of two
threads measure the neighbours).
"""
from __future__ import annotations

import statistics
import time

import numpy as np

import fastattn

from . import Case, time_blocks, try_import_torch


def _patches(x: np.ndarray, p: int) -> np.ndarray:
    """(N, C, H, W) -> (C p p, N H/p W/p): the patch matrix of a stride-p p x p convolution
    (space-to-depth, laid out as the B operand of W (Cout, C p p) @ B)."""
    n, c, h, w = x.shape
    t = x.reshape(n, c, h // p, p, w // p, p).transpose(1, 3, 5, 0, 2, 4)
    return np.ascontiguousarray(t.reshape(c * p * p, n * (h // p) * (w // p)))


def cases(quick: bool = False):
    torch = try_import_torch()
    rng = np.random.default_rng(0)

    def rand(*shape, scale=1.0):
        return (rng.standard_normal(shape, dtype=np.float32) * scale).astype(np.float32)

    def impls(fa, npf=None, tf=None):
        d = {"fastattn": fa}
        if npf is not None:
            d["numpy"] = npf
        if torch is not None and tf is not None:
            d["torch"] = tf
        return d

    def t(a):
        return torch.from_numpy(a) if torch is not None else None

    F = torch.nn.functional if torch is not None else None

    # ResNet's 3x3 stage-1 convolution (and --quick: a quarter of the batch)
    big = 2 if quick else 8
    for (batch, c, cout, hw, k, stride, pad, groups, label, goal) in [
        (big, 64, 64, 56, 3, 1, 1, 1, "3x3", ">= 1.0x torch"),
        (big, 64, 256, 56, 1, 1, 0, 1, "1x1", ">= 1.0x torch"),
        (big, 128, 128, 28, 3, 2, 1, 1, "3x3/2", ""),
        (big, 128, 128, 56, 3, 1, 1, 128, "depthwise 3x3", ">= 1.0x torch"),
        # ResNet-50 at batch 1: the stem and a last-stage 3x3 (49 pixels per weight)
        (1, 3, 64, 224, 7, 2, 3, 1, "7x7/2", ""),
        (1, 512, 512, 7, 3, 1, 1, 1, "3x3", ""),
    ]:
        x = rand(batch, c, hw, hw)
        w = rand(cout, c // groups, k, k, scale=(c // groups * k * k) ** -0.5)
        b = rand(cout)
        oh = (hw + 2 * pad - k) // stride + 1
        y = np.empty((batch, cout, oh, oh), np.float32)
        tx, tw, tb = t(x), t(w), t(b)
        flops = 2.0 * batch * cout * oh * oh * (c // groups) * k * k
        yield Case("conv2d", f"{label} {c}->{cout} {hw}^2 b{batch}", impls(
            lambda x=x, w=w, b=b, y=y, s=stride, p=pad, g=groups:
                fastattn.conv2d(x, w, b, stride=s, padding=p, groups=g, out=y),
            None,
            lambda tx=tx, tw=tw, tb=tb, s=stride, p=pad, g=groups:
                F.conv2d(tx, tw, tb, stride=s, padding=p, groups=g)),
            flops=flops, goal=goal)

    # ViT / SAM patch embedding: 16x16 stride 16, 3 -> 768 channels
    size = 512 if quick else 1024
    x = rand(1, 3, size, size)
    w = rand(768, 3, 16, 16, scale=768 ** -0.5)
    b = rand(768)
    g = size // 16
    y = np.empty((1, 768, g, g), np.float32)
    w2 = np.ascontiguousarray(w.reshape(768, -1))
    patches = _patches(x, 16)
    y2 = np.empty((768, g * g), np.float32)
    tx, tw, tb = t(x), t(w), t(b)
    flops = 2.0 * 768 * 768 * g * g
    shape = f"16/16 {size}^2 3->768"
    yield Case("conv2d patch", shape, impls(
        lambda x=x, w=w, b=b, y=y: fastattn.conv2d(x, w, b, stride=16, out=y),
        lambda x=x, w2=w2, y2=y2: np.matmul(w2, _patches(x, 16), out=y2),
        lambda tx=tx, tw=tw, tb=tb: F.conv2d(tx, tw, tb, stride=16)), flops=flops,
        goal="within 10% of the patch matmul")
    yield Case("patch matmul", f"768x768@768x{g * g}", impls(
        lambda w2=w2, y2=y2: fastattn.matmul(w2, patches, out=y2),
        lambda w2=w2, y2=y2: np.matmul(w2, patches, out=y2)), flops=flops, goal="(reference for conv2d patch)")

    # SAM's mask-decoder upsampler: ConvTranspose2d 2x2 stride 2, 256 -> 64 at 64x64
    x = rand(1, 256, 64, 64)
    w = rand(256, 64, 2, 2, scale=256 ** -0.5)
    b = rand(64)
    y = np.empty((1, 64, 128, 128), np.float32)
    tx, tw, tb = t(x), t(w), t(b)
    yield Case("conv_transpose2d", "2x2/2 256->64 64^2", impls(
        lambda: fastattn.conv_transpose2d(x, w, b, stride=2, out=y), None,
        lambda: F.conv_transpose2d(tx, tw, tb, stride=2)),
        flops=2.0 * 256 * 64 * 4 * 64 * 64, goal=">= 1.0x torch")


def cpu_seconds(impls: dict, rounds: int = 15) -> dict:
    """Median CPU time of the calling thread per call of each implementation, the calls
    interleaved round by round (A B A B ...), so a neighbour's load falls on both alike. On a
    machine shared with other jobs wall time measures the neighbours too; with one thread
    both libraries run the work on the calling thread, so its CPU time is the work. (Not the
    process's CPU time: idle worker threads of other pools spinning after their last call are
    charged to whoever runs next - torch's 3x3 read 31 ms that way against 17 ms alone.)"""
    samples = {name: [] for name in impls}
    for fn in impls.values():
        fn()
    for _ in range(rounds):
        for name, fn in impls.items():
            t0 = time.thread_time()
            fn()
            samples[name].append(time.thread_time() - t0)
    return {name: statistics.median(s) for name, s in samples.items()}


def main() -> None:
    """The patch embedding against its matmul (wall time, one run); with --cpu, every case of
    the suite on one thread in CPU time, fastattn against torch."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m fastattn.bench.conv")
    ap.add_argument("--cpu", action="store_true",
                    help="one thread, median CPU time of 15 interleaved calls, vs torch")
    args = ap.parse_args()
    if args.cpu:
        fastattn.set_num_threads(1)
        torch = try_import_torch()
        if torch is not None:
            torch.set_num_threads(1)
        for case in cases():
            t = cpu_seconds({k: f for k, f in case.impls.items() if k != "numpy"})
            line = f"{case.op:<17} {case.shape:<32}"
            for name, sec in t.items():
                line += f" {name} {sec * 1e3:8.2f} ms"
            if case.flops:
                line += f" ({case.flops / t['fastattn'] / 1e9:6.1f} GFLOP/s)"
            if "torch" in t:
                line += f"  vs torch {t['torch'] / t['fastattn']:.2f}x"
            print(line, flush=True)
        return
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 3, 1024, 1024), dtype=np.float32)
    w = rng.standard_normal((768, 3, 16, 16), dtype=np.float32)
    w2 = np.ascontiguousarray(w.reshape(768, -1))
    patches = _patches(x, 16)
    y = np.empty((1, 768, 64, 64), np.float32)
    y2 = np.empty((768, 4096), np.float32)
    s = time_blocks({"conv2d": lambda: fastattn.conv2d(x, w, stride=16, out=y),
                     "matmul": lambda: fastattn.matmul(w2, patches, out=y2)}, repeats=9)
    gf = 2.0 * 768 * 768 * 4096 / 1e9
    print(f"threads {fastattn.get_num_threads()}: conv2d {s['conv2d'] * 1e3:.2f} ms "
          f"({gf / s['conv2d']:.0f} GFLOP/s), matmul {s['matmul'] * 1e3:.2f} ms "
          f"({gf / s['matmul']:.0f} GFLOP/s): conv / matmul = {s['conv2d'] / s['matmul']:.3f}")


if __name__ == "__main__":
    main()
