"""fastattn._core checks its own arguments (issue 16, case 6).

The private extension is reachable by anyone (``fastattn._core.matmul(...)``), so every entry
point validates what it is given - types (numpy.ndarray of float32 where arrays are expected,
never a silent conversion), shapes, strides, sizes (overflow-safe), writable and separate
outputs, ints in range - and raises TypeError or ValueError, never crashes, never reads freed
memory. The hostile calls run in a subprocess, so that a crash fails the test instead of
killing the run; one subprocess runs them all (a line per call, flushed before the call, names
the one that crashed).
"""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from fastattn import _core

# Shared by the subprocess: helpers to build hostile arguments.
SETUP = """
import numpy as np
from fastattn import _core
from numpy.lib.stride_tricks import as_strided

def f32(*shape):
    return np.zeros(shape, np.float32)

def ro(a):
    a.setflags(write=False)
    return a

def zero_stride(shape):
    # a WRITABLE view whose rows alias each other (np.broadcast_to gives read-only ones)
    base = f32(shape[-1])
    return as_strided(base, shape, (0,) * (len(shape) - 1) + (4,))

def bc(shape):
    return np.broadcast_to(np.float32(1), shape)

x = f32(3, 4)
nr = _core.matmul_panel_width()
buf = f32(64)
q4, k4, v4 = f32(1, 2, 3, 4), f32(1, 1, 5, 4), f32(1, 1, 5, 4)
store = f32(1, 1, 1, 8, 4)
u16store = np.zeros((1, 1, 1, 8, 4), np.uint16)   # a float16 / bfloat16 KV store
packed_34 = f32(-(-4 // nr) * nr * 3)   # a (3, 4) b packed

# matmul_lowp: a (3, 4) @ (4, 3) product's storage (K = 4 pads to one 32-block)
lw16, lw8, lw4 = np.zeros((3, 4), np.uint16), np.zeros((3, 32), np.int8), np.zeros((3, 16), np.uint8)
ls = np.ones((3, 1), np.float16)

def i64(*shape):
    return np.zeros(shape, np.int64)

x3, o3 = f32(2, 3, 4), f32(2, 2, 2)   # resample: 2 planes 3 x 4 -> 2 x 2, one tap per axis
cx, cw, cy = f32(1, 4, 8, 8), f32(6, 4, 3, 3), f32(1, 6, 6, 6)   # conv2d 3x3, no padding
tw, ty = f32(4, 6, 3, 3), f32(1, 6, 10, 10)                      # conv_transpose2d of cx by tw

def conv(x=None, w=None, bias=None, res=None, out=None, s=(1, 1), p=(0, 0, 0, 0), d=(1, 1), g=1,
         act=None):
    return _core.conv2d(cx if x is None else x, cw if w is None else w, bias, res,
                        cy if out is None else out, *s, *p, *d, g, act)

def convt(x=None, w=None, bias=None, out=None, s=(1, 1), p=(0, 0), op=(0, 0), d=(1, 1), g=1):
    return _core.conv_transpose2d(cx if x is None else x, tw if w is None else w, bias,
                                  ty if out is None else out, *s, *p, *op, *d, g)
"""

# (name, call, expected message regex or None). Every call must raise TypeError or ValueError.
HOSTILE = [
    # runtime
    ("set_isa int", "_core.set_isa(1)", None),
    ("set_isa unknown", "_core.set_isa('avx9')", r"unknown ISA path 'avx9'"),
    ("set_num_threads 0", "_core.set_num_threads(0)", r"n must be an int in \[1, 1024\], got 0"),
    ("set_num_threads -1", "_core.set_num_threads(-1)", r"got -1"),
    ("set_num_threads 2**62", "_core.set_num_threads(2**62)", r"got 4611686018427387904"),
    ("set_num_threads 2**64", "_core.set_num_threads(2**64)", None),
    ("set_num_threads float", "_core.set_num_threads(2.0)", None),
    ("set_num_threads str", "_core.set_num_threads('2')", None),
    ("get_isa extra arg", "_core.get_isa(1)", None),
    ("available_isas extra arg", "_core.available_isas(1)", None),
    ("best_isa extra arg", "_core.best_isa(1)", None),
    ("get_num_threads extra arg", "_core.get_num_threads(1)", None),
    ("have_openmp extra arg", "_core.have_openmp(1)", None),
    ("cpu_model extra arg", "_core.cpu_model(1)", None),
    ("cpu_features extra arg", "_core.cpu_features(1)", None),
    ("matmul_panel_width extra arg", "_core.matmul_panel_width(1)", None),
    ("vector_math list", "_core.vector_math('exp', [1.0], f32(1))",
     r"vector_math: x must be a numpy.ndarray, got list"),
    ("vector_math fn", "_core.vector_math('tan', x, f32(3, 4))", r"fn must be 'exp' or 'erfc'"),
    ("vector_math read-only out", "_core.vector_math('exp', x, ro(f32(3, 4)))", r"out is read-only"),
    ("vector_math float64", "_core.vector_math('exp', x.astype(np.float64), f32(3, 4))",
     r"x must be float32 \(native byte order\), got float64"),
    ("vector_math zero-stride out", "_core.vector_math('exp', x, zero_stride((3, 4)))",
     r"out must be C-contiguous"),
    ("vector_math shape", "_core.vector_math('exp', x, f32(3, 5))", r"out has shape \(3, 5\)"),
    # softmax
    ("softmax list x", "_core.softmax([[1.0]], x, False)", r"softmax: x must be a numpy.ndarray, got list"),
    ("softmax list out", "_core.softmax(x, [[0.0] * 4] * 3, False)", r"out must be a numpy.ndarray"),
    ("softmax log int", "_core.softmax(x, f32(3, 4), 1)", None),
    ("softmax log None", "_core.softmax(x, f32(3, 4), None)", None),
    ("softmax 1-D", "_core.softmax(f32(4), f32(4), False)", r"x must be 2-D, got 1-D"),
    ("softmax 3-D", "_core.softmax(f32(2, 3, 4), f32(2, 3, 4), False)", r"must be 2-D, got 3-D"),
    ("softmax shape", "_core.softmax(x, f32(4, 3), False)", r"out has shape \(4, 3\), expected \(3, 4\)"),
    ("softmax read-only out", "_core.softmax(x, ro(f32(3, 4)), False)", r"out is read-only"),
    ("softmax zero-stride out", "_core.softmax(x, zero_stride((3, 4)), False)", r"out must not have zero strides"),
    ("softmax strided rows", "_core.softmax(f32(3, 8)[:, ::2], x, False)", r"rows must be contiguous"),
    ("softmax overlap", "_core.softmax(buf[:12].reshape(3, 4), buf[4:16].reshape(3, 4), False)",
     r"out overlaps x"),
    ("softmax byte stride", "_core.softmax(as_strided(buf, (3, 4), (6, 4)), x, False)", r"whole float"),
    # norms
    ("layer_norm list weight", "_core.layer_norm(x, [1.0] * 4, None, 1e-5, f32(3, 4))",
     r"layer_norm: weight must be a numpy.ndarray, got list"),
    ("layer_norm list bias", "_core.layer_norm(x, None, [1.0] * 4, 1e-5, f32(3, 4))", r"bias must be a numpy.ndarray"),
    ("layer_norm eps inf", "_core.layer_norm(x, None, None, float('inf'), f32(3, 4))", r"eps must be finite in float32"),
    ("layer_norm eps 1e39", "_core.layer_norm(x, None, None, 1e39, f32(3, 4))", r"eps must be finite in float32"),
    ("layer_norm eps nan", "_core.layer_norm(x, None, None, float('nan'), f32(3, 4))", r"eps"),
    ("layer_norm eps negative", "_core.layer_norm(x, None, None, -1.0, f32(3, 4))", r"eps must be .* >= 0"),
    ("layer_norm eps str", "_core.layer_norm(x, None, None, 'a', f32(3, 4))", None),
    ("layer_norm weight shape", "_core.layer_norm(x, f32(3), None, 1e-5, f32(3, 4))", r"weight has shape \(3,\)"),
    ("layer_norm weight broadcast", "_core.layer_norm(x, bc((4,)), None, 1e-5, f32(3, 4))", r"weight must be C-contiguous"),
    ("layer_norm weight float64", "_core.layer_norm(x, np.ones(4), None, 1e-5, f32(3, 4))", r"weight must be float32"),
    ("layer_norm weight in out", "[_core.layer_norm(x, o[0], None, 1e-5, o) for o in [f32(3, 4)]]",
     r"out overlaps weight"),
    ("layer_norm read-only out", "_core.layer_norm(x, None, None, 1e-5, ro(f32(3, 4)))", r"out is read-only"),
    ("rms_norm list x", "_core.rms_norm([[1.0]], None, 1e-6, f32(1, 1))", r"rms_norm: x must be a numpy.ndarray"),
    ("rms_norm eps 1e39", "_core.rms_norm(x, None, 1e39, f32(3, 4))", r"eps must be finite in float32"),
    ("rms_norm zero-stride out", "_core.rms_norm(x, None, 1e-6, zero_stride((3, 4)))", r"zero strides"),
    ("rms_norm weight tuple", "_core.rms_norm(x, (1.0,) * 4, 1e-6, f32(3, 4))", r"weight must be a numpy.ndarray, got tuple"),
    # element-wise
    ("activation list", "_core.activation('relu', [1.0], f32(1))", r"activation: x must be a numpy.ndarray, got list"),
    ("activation name", "_core.activation('tanh', x, f32(3, 4))", r"activation must be one of"),
    ("activation name int", "_core.activation(1, x, f32(3, 4))", None),
    ("activation read-only out", "_core.activation('relu', x, ro(f32(3, 4)))", r"out is read-only"),
    ("activation transposed", "_core.activation('relu', x.T, f32(4, 3))", r"x must be C-contiguous"),
    ("activation overlap", "_core.activation('relu', buf[:12], buf[1:13])", r"out overlaps x"),
    ("activation shape", "_core.activation('gelu', x, f32(12))", r"out has shape \(12,\)"),
    ("swiglu list up", "_core.swiglu(x, [[0.0] * 4] * 3, f32(3, 4))", r"swiglu: up must be a numpy.ndarray, got list"),
    ("swiglu shapes", "_core.swiglu(x, f32(3, 5), f32(3, 4))", r"up has shape \(3, 5\)"),
    ("swiglu overlap up", "_core.swiglu(x, buf[:12].reshape(3, 4), buf[2:14].reshape(3, 4))", r"out overlaps up"),
    ("swiglu int8", "_core.swiglu(x.astype(np.int8), x, f32(3, 4))", r"gate must be float32"),
    # matmul_lowp (weight formats): the storage's dtype, shape and contiguity against K, N
    ("matmul_lowp format", "_core.matmul_lowp(x, 'q5', lw8, ls, 4, 3, f32(3, 3), None, None, None)",
     r"weights must be 'bfloat16', 'float16', 'q8' or 'q4', got 'q5'"),
    ("matmul_lowp format int", "_core.matmul_lowp(x, 8, lw8, ls, 4, 3, f32(3, 3), None, None, None)",
     r"weights must be a str"),
    ("matmul_lowp q8 uint8 weight", "_core.matmul_lowp(x, 'q8', lw4, ls, 4, 3, f32(3, 3), None, None, None)",
     r"weight must be int8 for q8, got uint8"),
    ("matmul_lowp q8 short weight", "_core.matmul_lowp(x, 'q8', lw8[:, :16], ls, 4, 3, f32(3, 3), None, None, None)",
     r"weight has shape \(3, 16\), expected \(3, 32\)"),
    ("matmul_lowp q8 strided weight", "_core.matmul_lowp(x, 'q8', np.zeros((3, 64), np.int8)[:, ::2], ls, 4, 3, f32(3, 3), None, None, None)",
     r"weight must be C-contiguous"),
    ("matmul_lowp q4 scales float32", "_core.matmul_lowp(x, 'q4', lw4, f32(3, 1), 4, 3, f32(3, 3), None, None, None)",
     r"scales must be float16, got float32"),
    ("matmul_lowp q4 scales shape", "_core.matmul_lowp(x, 'q4', lw4, np.zeros((3, 2), np.float16), 4, 3, f32(3, 3), None, None, None)",
     r"scales has shape \(3, 2\), expected \(3, 1\)"),
    ("matmul_lowp q4 scales missing", "_core.matmul_lowp(x, 'q4', lw4, None, 4, 3, f32(3, 3), None, None, None)",
     r"scales must be a numpy.ndarray, got NoneType"),
    ("matmul_lowp bf16 scales given", "_core.matmul_lowp(x, 'bfloat16', lw16, ls, 4, 3, f32(3, 3), None, None, None)",
     r"scales must be None for bfloat16"),
    ("matmul_lowp bf16 float32 weight", "_core.matmul_lowp(x, 'bfloat16', f32(3, 4), None, 4, 3, f32(3, 3), None, None, None)",
     r"weight must be uint16 for bfloat16, got float32"),
    ("matmul_lowp bf16 big-endian weight", "_core.matmul_lowp(x, 'bfloat16', lw16.astype('>u2'), None, 4, 3, f32(3, 3), None, None, None)",
     r"weight must be uint16"),
    ("matmul_lowp K mismatch", "_core.matmul_lowp(x, 'bfloat16', np.zeros((3, 5), np.uint16), None, 5, 3, f32(3, 3), None, None, None)",
     r"a has shape \(3, 4\), which does not fit the weight \(K = 5\)"),
    ("matmul_lowp K negative", "_core.matmul_lowp(x, 'bfloat16', lw16, None, -4, 3, f32(3, 3), None, None, None)",
     r"K and N must be >= 0"),
    ("matmul_lowp K huge", "_core.matmul_lowp(x, 'q8', lw8, ls, 2**63 - 1, 3, f32(3, 3), None, None, None)",
     r"K and N must be >= 0"),
    ("matmul_lowp N huge", "_core.matmul_lowp(x, 'q8', lw8, ls, 4, 2**62, f32(3, 3), None, None, None)",
     r"K and N must be >= 0"),
    ("matmul_lowp K float", "_core.matmul_lowp(x, 'q8', lw8, ls, 4.0, 3, f32(3, 3), None, None, None)", None),
    ("matmul_lowp out shape", "_core.matmul_lowp(x, 'q8', lw8, ls, 4, 3, f32(3, 4), None, None, None)",
     r"out has shape \(3, 4\), expected \(3, 3\)"),
    ("matmul_lowp out read-only", "_core.matmul_lowp(x, 'q8', lw8, ls, 4, 3, ro(f32(3, 3)), None, None, None)",
     r"out is read-only"),
    ("matmul_lowp out zero-stride", "_core.matmul_lowp(x, 'q8', lw8, ls, 4, 3, zero_stride((3, 3)), None, None, None)",
     r"zero strides"),
    ("matmul_lowp out columns strided", "_core.matmul_lowp(x, 'q8', lw8, ls, 4, 3, f32(3, 6)[:, ::2], None, None, None)",
     r"out rows must be contiguous"),
    ("matmul_lowp out overlaps a", "[_core.matmul_lowp(b[:, :4], 'q8', lw8, ls, 4, 3, b[:, 2:5], None, None, None) for b in [f32(3, 8)]]",
     r"out overlaps a"),
    ("matmul_lowp out overlaps weight", "[_core.matmul_lowp(x, 'bfloat16', b.view(np.uint16)[:12].reshape(3, 4), None, 4, 3, b[2:11].reshape(3, 3), None, None, None) for b in [f32(16)]]",
     r"out overlaps weight"),
    ("matmul_lowp bias list", "_core.matmul_lowp(x, 'q8', lw8, ls, 4, 3, f32(3, 3), [1.0] * 3, None, None)",
     r"bias must be a numpy.ndarray, got list"),
    ("matmul_lowp bias shape", "_core.matmul_lowp(x, 'q8', lw8, ls, 4, 3, f32(3, 3), f32(4), None, None)",
     r"bias has shape \(4,\), expected \(3,\)"),
    ("matmul_lowp residual shape", "_core.matmul_lowp(x, 'q8', lw8, ls, 4, 3, f32(3, 3), None, None, f32(3, 4))",
     r"residual has shape \(3, 4\), expected \(3, 3\)"),
    ("matmul_lowp activation", "_core.matmul_lowp(x, 'q8', lw8, ls, 4, 3, f32(3, 3), None, 'tanh', None)",
     r"activation must be None, 'relu'"),
    ("matmul_lowp a float64", "_core.matmul_lowp(x.astype(np.float64), 'q8', lw8, ls, 4, 3, f32(3, 3), None, None, None)",
     r"a must be float32"),
    ("matmul_lowp a 3-D", "_core.matmul_lowp(f32(1, 3, 4), 'q8', lw8, ls, 4, 3, f32(3, 3), None, None, None)",
     r"a must be 2-D"),
    ("matmul_lowp_gemv_max_m extra arg", "_core.matmul_lowp_gemv_max_m(1)", None),
    # matmul: the freed-memory bug was a list bias / residual converted to a dying temporary
    ("matmul list bias", "_core.matmul(x, f32(4, 3), f32(3, 3), [1.0] * 3, None, None)",
     r"matmul: bias must be a numpy.ndarray, got list"),
    ("matmul list residual", "_core.matmul(x, f32(4, 3), f32(3, 3), None, None, [[1.0] * 3] * 3)",
     r"matmul: residual must be a numpy.ndarray, got list"),
    ("matmul list residual batched",
     "_core.matmul(f32(2, 3, 4), f32(2, 4, 3), f32(2, 3, 3), None, None, [[[1.0] * 3] * 3] * 2)",
     r"residual must be a numpy.ndarray"),
    ("matmul list a", "_core.matmul([[1.0]], f32(1, 1), f32(1, 1), None, None, None)", r"a must be a numpy.ndarray"),
    ("matmul list out", "_core.matmul(x, f32(4, 3), [[0.0] * 3] * 3, None, None, None)", r"out must be a numpy.ndarray"),
    ("matmul bias float64", "_core.matmul(x, f32(4, 3), f32(3, 3), np.ones(3), None, None)", r"bias must be float32"),
    ("matmul bias shape", "_core.matmul(x, f32(4, 3), f32(3, 3), f32(4), None, None)", r"bias has shape \(4,\), expected \(3,\)"),
    ("matmul bias strided", "_core.matmul(x, f32(4, 3), f32(3, 3), f32(6)[::2], None, None)", r"bias must be contiguous"),
    ("matmul residual shape", "_core.matmul(x, f32(4, 3), f32(3, 3), None, None, f32(3, 4))", r"residual has shape"),
    ("matmul residual is out", "[_core.matmul(x, f32(4, 3), o, None, None, o) for o in [f32(3, 3)]]",
     r"out overlaps residual"),
    ("matmul activation int", "_core.matmul(x, f32(4, 3), f32(3, 3), None, 1, None)", r"activation must be None or a str, got int"),
    ("matmul activation name", "_core.matmul(x, f32(4, 3), f32(3, 3), None, 'tanh', None)", r"activation must be None"),
    ("matmul read-only out", "_core.matmul(x, f32(4, 3), ro(f32(3, 3)), None, None, None)", r"out is read-only"),
    ("matmul zero-stride out", "_core.matmul(x, f32(4, 3), zero_stride((3, 3)), None, None, None)", r"zero strides"),
    ("matmul 1-D a", "_core.matmul(f32(4), f32(4, 3), f32(3, 3), None, None, None)", r"a must be at least 2-D"),
    ("matmul inner", "_core.matmul(x, f32(5, 3), f32(3, 3), None, None, None)", r"b has shape \(5, 3\)"),
    ("matmul out shape", "_core.matmul(x, f32(4, 3), f32(3, 4), None, None, None)", r"out has shape"),
    ("matmul ndim", "_core.matmul(f32(2, 3, 4), f32(4, 3), f32(2, 3, 3), None, None, None)", r"same number of dimensions"),
    ("matmul batch", "_core.matmul(f32(2, 3, 4), f32(3, 4, 3), f32(2, 3, 3), None, None, None)", r"b has shape"),
    ("matmul out overlaps a", "_core.matmul(buf[:12].reshape(3, 4), f32(4, 3), buf[:9].reshape(3, 3), None, None, None)",
     r"out overlaps a"),
    ("matmul out byte stride", "_core.matmul(x, f32(4, 3), as_strided(buf, (3, 3), (14, 4)), None, None, None)",
     r"whole floats"),
    ("matmul float64", "_core.matmul(x.astype(np.float64), f32(4, 3), f32(3, 3), None, None, None)", r"a must be float32"),
    # pack_b: the size check overflowed for broadcast b (K * ceil(N / nr) * nr wrapped to 0)
    ("pack_b broadcast huge K", "_core.matmul_pack_b(bc((2**59, 1)), f32(0))", r"packed buffer has 0 elements"),
    ("pack_b broadcast huge", "_core.matmul_pack_b(bc((2**40, 2**20)), f32(0))", r"packed buffer"),
    ("pack_b wrong size", "_core.matmul_pack_b(f32(3, 4), f32(5))", r"packed buffer has 5 elements"),
    ("pack_b list b", "_core.matmul_pack_b([[1.0]], f32(nr))", r"b must be a numpy.ndarray"),
    ("pack_b list packed", "_core.matmul_pack_b(f32(1, 1), [0.0] * nr)", r"packed must be a numpy.ndarray"),
    ("pack_b 3-D b", "_core.matmul_pack_b(f32(1, 3, 4), packed_34)", r"b must be 2-D"),
    ("pack_b read-only", "_core.matmul_pack_b(f32(3, 4), ro(packed_34.copy()))", r"packed is read-only"),
    ("pack_b float64 packed", "_core.matmul_pack_b(f32(3, 4), packed_34.astype(np.float64))", r"packed must be float32"),
    ("pack_b overlap", "[_core.matmul_pack_b(p[:12].reshape(3, 4), p) for p in [packed_34.copy()]]", r"packed overlaps b"),
    ("pack_b strided packed", "_core.matmul_pack_b(f32(3, 4), f32(2 * packed_34.size)[::2])", r"packed must be C-contiguous"),
    ("packed K negative", "_core.matmul_packed(f32(3, 0), f32(0), -1, 4, f32(3, 4), None, None, None)", r"K and N must be >= 0"),
    ("packed N negative", "_core.matmul_packed(x, packed_34, 3, -4, f32(3, 4), None, None, None)", r"K and N must be >= 0"),
    ("packed K huge", "_core.matmul_packed(x, packed_34, 2**62, 4, f32(3, 4), None, None, None)", r"does not fit"),
    ("packed N huge", "_core.matmul_packed(f32(0, 8), f32(0), 8, 2**60, np.empty((0, 2**60), np.float32), None, None, None)",
     r"packed buffer has 0 elements"),
    ("packed K 2**64", "_core.matmul_packed(x, packed_34, 2**64, 4, f32(3, 4), None, None, None)", None),
    ("packed K float", "_core.matmul_packed(x, packed_34, 3.0, 4, f32(3, 4), None, None, None)", None),
    ("packed wrong size", "_core.matmul_packed(f32(4, 3), f32(7), 3, 4, f32(4, 4), None, None, None)", r"packed buffer has 7"),
    ("packed list bias", "_core.matmul_packed(f32(4, 3), packed_34, 3, 4, f32(4, 4), [0.0] * 4, None, None)",
     r"bias must be a numpy.ndarray"),
    ("packed list residual", "_core.matmul_packed(f32(4, 3), packed_34, 3, 4, f32(4, 4), None, None, [[0.0] * 4] * 4)",
     r"residual must be a numpy.ndarray"),
    ("packed read-only out", "_core.matmul_packed(f32(4, 3), packed_34, 3, 4, ro(f32(4, 4)), None, None, None)", r"out is read-only"),
    ("packed out overlaps packed", "_core.matmul_packed(f32(1, 3), packed_34, 3, 4, packed_34[:4].reshape(1, 4), None, None, None)",
     r"out overlaps packed"),
    # conv2d / conv_transpose2d (the helpers conv / convt call _core.conv2d(...) /
    # _core.conv_transpose2d(...) with valid defaults)
    ("conv2d list x", "_core.conv2d([[[[0.0]]]], cw, None, None, cy, 1, 1, 0, 0, 0, 0, 1, 1, 1, None)",
     r"conv2d: x must be a numpy.ndarray, got list"),
    ("conv2d list bias", "conv(bias=[0.0] * 6)", r"bias must be a numpy.ndarray, got list"),
    ("conv2d list residual", "conv(res=cy.tolist())", r"residual must be a numpy.ndarray"),
    ("conv2d list out", "conv(out=cy.tolist())", r"out must be a numpy.ndarray"),
    ("conv2d float64 weight", "conv(w=cw.astype(np.float64))", r"weight must be float32"),
    ("conv2d 3-D x", "conv(x=cx[0])", r"x must be 4-D, got 3-D"),
    ("conv2d transposed x", "conv(x=f32(1, 8, 8, 4).transpose(0, 3, 1, 2))", r"x must be C-contiguous"),
    ("conv2d channels", "conv(w=f32(6, 3, 3, 3))", r"weight has shape \(6, 3, 3, 3\)"),
    ("conv2d groups 0", "conv(g=0)", r"groups must be an int in \[1"),
    ("conv2d groups 3", "conv(g=3)", r"groups = 3 must divide"),
    ("conv2d groups 2**40", "conv(g=2**40)", r"groups"),
    ("conv2d stride 0", "conv(s=(0, 1))", r"stride must be an int in \[1"),
    ("conv2d stride 2**62", "conv(s=(1, 2**62))", r"stride"),
    ("conv2d stride 2**64", "conv(s=(2**64, 1))", None),
    ("conv2d stride float", "conv(s=(1.0, 1))", None),
    ("conv2d padding -1", "conv(p=(0, 0, -1, 0))", r"padding must be an int in \[0"),
    ("conv2d padding 2**63-1", "conv(p=(2**63 - 1, 0, 0, 0))", r"padding"),
    ("conv2d dilation 0", "conv(d=(1, 0))", r"dilation"),
    ("conv2d dilation 2**31-1", "conv(d=(2**31 - 1, 1))", r"larger than the padded input"),
    ("conv2d kernel too large", "conv(x=f32(1, 4, 2, 8))", r"larger than the padded input"),
    ("conv2d empty kernel", "conv(w=f32(6, 4, 0, 3))", r"at least 1 x 1"),
    ("conv2d out shape", "conv(out=f32(1, 6, 8, 8))", r"out has shape \(1, 6, 8, 8\), expected \(1, 6, 6, 6\)"),
    ("conv2d out shape padded", "conv(p=(1, 1, 1, 1))", r"expected \(1, 6, 8, 8\)"),
    ("conv2d read-only out", "conv(out=ro(f32(1, 6, 6, 6)))", r"out is read-only"),
    ("conv2d strided out", "conv(out=f32(1, 6, 6, 12)[..., ::2])", r"out must be C-contiguous"),
    ("conv2d out overlaps x", "[conv(x=b[:256].reshape(1, 4, 8, 8), out=b[40:256].reshape(1, 6, 6, 6)) for b in [f32(256)]]",
     r"out overlaps x"),
    ("conv2d residual is out", "[conv(res=o, out=o) for o in [f32(1, 6, 6, 6)]]", r"out overlaps residual"),
    ("conv2d residual shape", "conv(res=f32(1, 6, 6, 5))", r"residual has shape"),
    ("conv2d bias shape", "conv(bias=f32(5))", r"bias has shape \(5,\), expected \(6,\)"),
    ("conv2d activation", "conv(act='tanh')", r"activation must be None"),
    ("conv2d activation int", "conv(act=2)", r"activation must be None or a str, got int"),
    ("conv2d misaligned x", "conv(x=np.frombuffer(np.zeros(1025, np.uint8).data, np.uint8)[1:].view(np.float32).reshape(1, 4, 8, 8))",
     r"x must be aligned"),
    ("conv_transpose2d list x", "_core.conv_transpose2d([[[[0.0]]]], tw, None, ty, 1, 1, 0, 0, 0, 0, 1, 1, 1)",
     r"conv_transpose2d: x must be a numpy.ndarray, got list"),
    ("conv_transpose2d list bias", "convt(bias=[0.0] * 6)", r"bias must be a numpy.ndarray"),
    ("conv_transpose2d channels", "convt(w=cw)", r"weight has shape \(6, 4, 3, 3\)"),
    ("conv_transpose2d groups", "convt(g=3)", r"groups dividing 4"),
    ("conv_transpose2d too small", "convt(p=(9, 0))", r"too small"),
    ("conv_transpose2d stride huge", "convt(s=(2**31 - 1, 1))", r"out has shape"),
    ("conv_transpose2d stride 2**64", "convt(s=(1, 2**64))", None),
    ("conv_transpose2d output_padding -1", "convt(op=(0, -1))", r"output_padding"),
    ("conv_transpose2d dilation huge", "convt(d=(2**31 - 1, 2**31 - 1))", r"out has shape"),
    ("conv_transpose2d empty x", "convt(x=f32(1, 4, 0, 8))", r"at least one pixel"),
    ("conv_transpose2d out shape", "convt(out=f32(1, 6, 9, 10))", r"out has shape"),
    ("conv_transpose2d read-only out", "convt(out=ro(f32(1, 6, 10, 10)))", r"out is read-only"),
    ("conv_transpose2d out overlaps weight", "[convt(w=b[:216].reshape(4, 6, 3, 3), out=b[:600].reshape(1, 6, 10, 10)) for b in [f32(600)]]",
     r"out overlaps weight"),
    ("conv_transpose2d float16 out", "convt(out=ty.astype(np.float16))", r"out must be float32"),
    # attention
    ("attention list q", "_core.attention([[[[0.0]]]], k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None)",
     r"attention: q must be a numpy.ndarray, got list"),
    ("attention list mask", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), [[[[True] * 5] * 3] * 2], False, 0, 1.0, None)",
     r"mask must be a numpy.ndarray"),
    ("attention mask int8", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), np.ones((1, 2, 3, 5), np.int8), False, 0, 1.0, None)",
     r"mask must be bool or float32, got int8"),
    ("attention mask 3-D", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), np.ones((2, 3, 5), bool), False, 0, 1.0, None)",
     r"mask must be 4-D"),
    ("attention mask shape", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), np.ones((1, 2, 3, 4), bool), False, 0, 1.0, None)",
     r"mask has shape"),
    ("attention list weights", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, [0.0])",
     r"weights must be a numpy.ndarray"),
    ("attention weights strided", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, f32(1, 2, 3, 10)[..., ::2])",
     r"weights must be C-contiguous"),
    ("attention weights overlap out", "[_core.attention(q4, k4, v4, t[:24].reshape(1, 2, 3, 4), None, False, 0, 1.0, t.reshape(1, 2, 3, 5)) for t in [f32(30)]]",
     r"weights overlaps out"),
    ("attention scale 1e39", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1e39, None)",
     r"scale must be finite in float32"),
    ("attention scale inf", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, float('inf'), None)", r"scale"),
    ("attention scale nan", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, float('nan'), None)", r"scale"),
    ("attention scale str", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, '1', None)", None),
    ("attention window -1", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, -1, 1.0, None)", r"window must be >= 1"),
    ("attention window 2**64", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 2**64, 1.0, None)", None),
    ("attention causal int", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, 1, 0, 1.0, None)", None),
    ("attention causal None", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, None, 0, 1.0, None)", None),
    ("attention 3-D q", "_core.attention(q4[0], k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None)", r"q must be 4-D"),
    ("attention D", "_core.attention(q4, f32(1, 1, 5, 3), v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None)", r"k has shape"),
    ("attention heads", "_core.attention(q4, f32(1, 3, 5, 4), f32(1, 3, 5, 4), f32(1, 2, 3, 4), None, False, 0, 1.0, None)",
     r"not a multiple"),
    ("attention read-only out", "_core.attention(q4, k4, v4, ro(f32(1, 2, 3, 4)), None, False, 0, 1.0, None)", r"out is read-only"),
    ("attention zero-stride out", "_core.attention(q4, k4, v4, zero_stride((1, 2, 3, 4)), None, False, 0, 1.0, None)",
     r"zero strides"),
    ("attention out overlaps k", "[_core.attention(q4, kk[:, :, :5], v4, kk.reshape(1, 2, 3, 4), None, False, 0, 1.0, None) for kk in [f32(1, 1, 6, 4)]]",
     r"out overlaps k"),
    ("attention out shifted q", "[_core.attention(b[:24].reshape(1, 2, 3, 4), k4, v4, b[4:28].reshape(1, 2, 3, 4), None, False, 0, 1.0, None) for b in [f32(28)]]",
     r"out overlaps q"),
    # attention's relative-position tables (rel_h, rel_w): q4 has Lq = 3, k4 Lk = 5 = 5 x 1
    ("attention rel_h without rel_w", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None, f32(1, 2, 3, 5), None)",
     r"rel_h and rel_w must both be given"),
    ("attention rel_w list", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None, f32(1, 2, 3, 5), [[[[0.0]] * 3] * 2])",
     r"rel_w must be a numpy.ndarray"),
    ("attention rel_h float64", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None, np.zeros((1, 2, 3, 5)), f32(1, 2, 3, 1))",
     r"rel_h must be float32"),
    ("attention rel_h 3-D", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None, f32(2, 3, 5), f32(1, 2, 3, 1))",
     r"rel_h must be 4-D"),
    ("attention rel_w rows", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None, f32(1, 2, 3, 5), f32(1, 2, 2, 1))",
     r"rel_w has shape \(1, 2, 2, 1\), expected \(1, 2, 3, 1\)"),
    ("attention rel widths", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None, f32(1, 2, 3, 2), f32(1, 2, 3, 2))",
     r"Kh = 2 and Kw = 2, expected Kh \* Kw == Lk = 5"),
    ("attention rel huge widths", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None, bc((1, 2, 3, 2**32)), bc((1, 2, 3, 2**32)))",
     r"Kh = 4294967296 and Kw = 4294967296"),
    ("attention rel_w width 0", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None, f32(1, 2, 3, 5), f32(1, 2, 3, 0))",
     r"Kw = 0, expected Kh \* Kw == Lk = 5"),
    ("attention rel_h misaligned strides", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, None, as_strided(buf, (1, 2, 3, 5), (4, 4, 4, 2)), f32(1, 2, 3, 1))",
     r"rel_h strides must be whole floats"),
    ("attention out overlaps rel_w", "[_core.attention(q4, k4, v4, t.reshape(1, 2, 3, 4), None, False, 0, 1.0, None, f32(1, 2, 3, 5), t[:6].reshape(1, 2, 3, 1)) for t in [f32(24)]]",
     r"out.*rel_w"),
    ("attention weights overlap rel_h", "[_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, False, 0, 1.0, t.reshape(1, 2, 3, 5), t.reshape(1, 2, 3, 5), f32(1, 2, 3, 1)) for t in [f32(30)]]",
     r"weights.*rel_h"),
    ("attention float64 v", "_core.attention(q4, k4, v4.astype(np.float64), f32(1, 2, 3, 4), None, False, 0, 1.0, None)",
     r"v must be float32"),
    # rope
    ("rope list x", "_core.rope([[[[0.0]]]], f32(1, 1, 1), f32(1, 1, 1), f32(1, 1, 1, 2), 2, False)", r"rope: x must be a numpy.ndarray"),
    ("rope list cos", "_core.rope(q4, [[[0.0] * 2] * 3], f32(1, 3, 2), f32(1, 2, 3, 4), 4, False)", r"cos must be a numpy.ndarray"),
    ("rope rot odd", "_core.rope(q4, f32(1, 3, 2), f32(1, 3, 2), f32(1, 2, 3, 4), 3, False)", r"rotary_dim must be even"),
    ("rope rot negative", "_core.rope(q4, f32(1, 3, 2), f32(1, 3, 2), f32(1, 2, 3, 4), -2, False)", r"rotary_dim"),
    ("rope rot 2**62", "_core.rope(q4, f32(1, 3, 2), f32(1, 3, 2), f32(1, 2, 3, 4), 2**62, False)", r"rotary_dim"),
    ("rope rot 2**64", "_core.rope(q4, f32(1, 3, 2), f32(1, 3, 2), f32(1, 2, 3, 4), 2**64, False)", None),
    ("rope rot float", "_core.rope(q4, f32(1, 3, 2), f32(1, 3, 2), f32(1, 2, 3, 4), 4.0, False)", None),
    ("rope interleaved int", "_core.rope(q4, f32(1, 3, 2), f32(1, 3, 2), f32(1, 2, 3, 4), 4, 1)", None),
    ("rope table shape", "_core.rope(q4, f32(1, 3, 3), f32(1, 3, 3), f32(1, 2, 3, 4), 4, False)", r"cos table has shape"),
    ("rope broadcast table", "_core.rope(q4, bc((1, 3, 2)), f32(1, 3, 2), f32(1, 2, 3, 4), 4, False)", r"cos must be C-contiguous"),
    ("rope read-only out", "_core.rope(q4, f32(1, 3, 2), f32(1, 3, 2), ro(f32(1, 2, 3, 4)), 4, False)", r"out is read-only"),
    ("rope out overlaps cos", "[_core.rope(q4, t[:6].reshape(1, 3, 2), f32(1, 3, 2), t.reshape(1, 2, 3, 4), 4, False) for t in [f32(24)]]",
     r"out overlaps cos"),
    # KV cache
    ("kv_append list k", "_core.kv_append(store, store.copy(), 0, [[[[0.0] * 4]]], f32(1, 1, 1, 4), 0)",
     r"KVCache.append: k must be a numpy.ndarray, got list"),
    ("kv_append list store", "_core.kv_append([0.0], store, 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0)", r"kstore must be a numpy.ndarray"),
    ("kv_append layer -1", "_core.kv_append(store, store.copy(), -1, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0)", r"layer -1 is out of range"),
    ("kv_append layer 2**62", "_core.kv_append(store, store.copy(), 2**62, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0)", r"out of range"),
    ("kv_append layer 2**64", "_core.kv_append(store, store.copy(), 2**64, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0)", None),
    ("kv_append layer float", "_core.kv_append(store, store.copy(), 0.0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0)", None),
    ("kv_append start -1", "_core.kv_append(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), -1)", r"start"),
    ("kv_append start 2**63-1", "_core.kv_append(store, store.copy(), 0, f32(1, 1, 2, 4), f32(1, 1, 2, 4), 2**63 - 1)", r"start"),
    ("kv_append T > S", "_core.kv_append(store, store.copy(), 0, f32(1, 1, 9, 4), f32(1, 1, 9, 4), 0)", r"need 1 <= T <= 8"),
    ("kv_append T 0", "_core.kv_append(store, store.copy(), 0, f32(1, 1, 0, 4), f32(1, 1, 0, 4), 0)", r"need 1 <= T"),
    ("kv_append k shape", "_core.kv_append(store, store.copy(), 0, f32(1, 2, 1, 4), f32(1, 2, 1, 4), 0)", r"k has shape"),
    ("kv_append read-only store", "_core.kv_append(ro(store.copy()), store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0)",
     r"kstore is read-only"),
    ("kv_append k in store", "[_core.kv_append(s, s.copy(), 0, s[0], f32(1, 1, 8, 4), 0) for s in [store.copy()]]",
     r"kstore overlaps k"),
    ("kv_append stores differ", "_core.kv_append(store, f32(1, 1, 1, 4, 4), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0)",
     r"vstore has shape"),
    ("kv_attend list q", "_core.kv_attend(store, store.copy(), 0, [0.0], f32(1, 1, 1, 4), 1, 0, 1.0)", r"q must be a numpy.ndarray"),
    ("kv_attend scale 1e39", "_core.kv_attend(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 1, 0, 1e39)",
     r"KVCache.attend: scale must be finite in float32"),
    ("kv_attend scale nan", "_core.kv_attend(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 1, 0, float('nan'))", r"scale"),
    ("kv_attend length 2**62", "_core.kv_attend(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 2**62, 0, 1.0)",
     r"not stored"),
    ("kv_attend length 0", "_core.kv_attend(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0, 0, 1.0)", r"not stored"),
    ("kv_attend length -1", "_core.kv_attend(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), -1, 0, 1.0)", r"not stored"),
    ("kv_attend window -1", "_core.kv_attend(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 1, -1, 1.0)", r"not stored"),
    ("kv_attend window 2**64", "_core.kv_attend(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 1, 2**64, 1.0)", None),
    ("kv_attend out in store", "[_core.kv_attend(s, s.copy(), 0, f32(1, 1, 8, 4), s[0], 8, 0, 1.0) for s in [store.copy()]]",
     r"out overlaps kstore"),
    ("kv_attend read-only out", "_core.kv_attend(store, store.copy(), 0, f32(1, 1, 1, 4), ro(f32(1, 1, 1, 4)), 1, 0, 1.0)",
     r"out is read-only"),
    ("kv_attend heads", "_core.kv_attend(f32(1, 1, 2, 8, 4), f32(1, 1, 2, 8, 4), 0, f32(1, 3, 1, 4), f32(1, 3, 1, 4), 1, 0, 1.0)",
     r"q has shape"),
    # KV cache, 16-bit storage: the store's dtype must match the dtype argument
    ("kv_append float32 store as float16", "_core.kv_append(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0, 'float16')",
     r"KVCache.append: kstore must be uint16 \(native byte order: float16 bit patterns\), got float32"),
    ("kv_append uint16 store as float32", "_core.kv_append(u16store, u16store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0)",
     r"kstore must be float32"),
    ("kv_append int16 store", "_core.kv_append(u16store.view(np.int16), u16store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0, 'bfloat16')",
     r"kstore must be uint16"),
    ("kv_append big-endian store", "_core.kv_append(u16store.astype('>u2'), u16store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0, 'float16')",
     r"kstore must be uint16"),
    ("kv_append mixed stores", "_core.kv_append(u16store, store, 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0, 'float16')",
     r"vstore must be uint16"),
    ("kv_append dtype name", "_core.kv_append(u16store, u16store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0, 'half')",
     r"dtype must be 'float32', 'float16' or 'bfloat16', got 'half'"),
    ("kv_append dtype None", "_core.kv_append(u16store, u16store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0, None)", None),
    ("kv_append uint16 k", "_core.kv_append(u16store, u16store.copy(), 0, np.zeros((1, 1, 1, 4), np.uint16), f32(1, 1, 1, 4), 0, 'float16')",
     r"k must be float32"),
    ("kv_append 16-bit T > S", "_core.kv_append(u16store, u16store.copy(), 0, f32(1, 1, 9, 4), f32(1, 1, 9, 4), 0, 'bfloat16')",
     r"need 1 <= T <= 8"),
    ("kv_append 16-bit read-only store", "_core.kv_append(ro(u16store.copy()), u16store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 0, 'float16')",
     r"kstore is read-only"),
    ("kv_attend float32 store as bfloat16", "_core.kv_attend(store, store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 1, 0, 1.0, 'bfloat16')",
     r"KVCache.attend: kstore must be uint16"),
    ("kv_attend uint16 store as float32", "_core.kv_attend(u16store, u16store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 1, 0, 1.0)",
     r"kstore must be float32"),
    ("kv_attend 16-bit strided store", "_core.kv_attend(np.zeros((1, 1, 1, 8, 8), np.uint16)[..., ::2], u16store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 1, 0, 1.0, 'float16')",
     r"kstore must be C-contiguous"),
    ("kv_attend 16-bit length 2**62", "_core.kv_attend(u16store, u16store.copy(), 0, f32(1, 1, 1, 4), f32(1, 1, 1, 4), 2**62, 0, 1.0, 'float16')",
     r"not stored"),
    ("kv_attend 16-bit out uint16", "_core.kv_attend(u16store, u16store.copy(), 0, f32(1, 1, 1, 4), np.zeros((1, 1, 1, 4), np.uint16), 1, 0, 1.0, 'float16')",
     r"out must be float32"),
    ("kv_to_float32 float32 src", "_core.kv_to_float32(f32(4), f32(4), 'float16')", r"KVCache.to_float32: src must be uint16"),
    ("kv_to_float32 dtype float32", "_core.kv_to_float32(np.zeros(4, np.uint16), f32(4), 'float32')", r"dtype must be 'float16' or 'bfloat16'"),
    ("kv_to_float32 shape", "_core.kv_to_float32(np.zeros(4, np.uint16), f32(5), 'bfloat16')", r"out has shape"),
    ("kv_to_float32 list", "_core.kv_to_float32([0, 1], f32(2), 'bfloat16')", r"src must be a numpy.ndarray, got list"),
    ("kv_to_float32 read-only out", "_core.kv_to_float32(np.zeros(4, np.uint16), ro(f32(4)), 'float16')", r"out is read-only"),
    ("kv_to_float32 strided src", "_core.kv_to_float32(np.zeros(8, np.uint16)[::2], f32(4), 'float16')", r"src must be C-contiguous"),
    ("kv_to_float32 out overlaps src", "[_core.kv_to_float32(b.view(np.uint16)[:4], b[:4], 'float16') for b in [f32(8)]]", r"out overlaps src"),
    ("kv_from_float32 uint16 src", "_core.kv_from_float32(np.zeros(4, np.uint16), np.zeros(4, np.uint16), 'float16')", r"KVCache.from_float32: src must be float32"),
    ("kv_from_float32 float32 out", "_core.kv_from_float32(f32(4), f32(4), 'bfloat16')", r"out must be uint16"),
    ("kv_from_float32 rank", "_core.kv_from_float32(f32(2, 2), np.zeros(4, np.uint16), 'float16')", r"out"),
    ("kv_from_float32 dtype 5", "_core.kv_from_float32(f32(4), np.zeros(4, np.uint16), 5)", None),
    # resample (max_pool2d, adaptive_avg_pool2d, interpolate): tap tables checked entry by entry
    ("resample list x", "_core.resample([[[0.0]]], o3, i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"resample: x must be a numpy.ndarray, got list"),
    ("resample 4-D x", "_core.resample(x3[None], o3, i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"x must be 3-D"),
    ("resample float64 x", "_core.resample(x3.astype(np.float64), o3, i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"x must be float32"),
    ("resample strided x", "_core.resample(f32(2, 3, 8)[..., ::2], o3, i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"x must be C-contiguous"),
    ("resample planes", "_core.resample(x3, f32(3, 2, 2), i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"expected 2 planes"),
    ("resample read-only out", "_core.resample(x3, ro(f32(2, 2, 2)), i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"out is read-only"),
    ("resample out overlaps x", "[_core.resample(b[:24].reshape(2, 3, 4), b[16:24].reshape(2, 2, 2), i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum') for b in [f32(24)]]",
     r"out overlaps x"),
    ("resample out overlaps weight", "[_core.resample(x3, o, i64(1, 2), o[0].T, i64(1, 1), f32(1, 1), 'sum') for o in [f32(2, 2, 1)]]",
     r"out overlaps row_weight"),
    ("resample out is weight", "[_core.resample(x3, o.reshape(2, 2, 2), i64(1, 2), f32(1, 2), i64(4, 2), o.reshape(4, 2), 'sum') for o in [f32(8)]]",
     r"out overlaps col_weight"),
    ("resample index float", "_core.resample(x3, o3, f32(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"row_index must be int64"),
    ("resample index int32", "_core.resample(x3, o3, i64(1, 2), f32(1, 2), np.zeros((1, 2), np.int32), f32(1, 2), 'sum')",
     r"col_index must be int64"),
    ("resample index big-endian", "_core.resample(x3, o3, i64(1, 2).astype('>i8'), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"row_index must be int64 \(native byte order\)"),
    ("resample index list", "_core.resample(x3, o3, [[0], [0]], f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"row_index must be a numpy.ndarray"),
    ("resample index 1-D", "_core.resample(x3, o3, i64(2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"row_index must be 2-D"),
    ("resample index rows", "_core.resample(x3, o3, i64(1, 3), f32(1, 3), i64(1, 2), f32(1, 2), 'sum')",
     r"row_index has shape \(1, 3\), expected \(taps, 2\)"),
    ("resample index = H", "_core.resample(x3, o3, i64(1, 2) + 3, f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"row_index holds 3, expected indices in \[-1, 3\)"),
    ("resample index -2", "_core.resample(x3, o3, i64(1, 2), f32(1, 2), i64(1, 2) - 2, f32(1, 2), 'sum')",
     r"col_index holds -2"),
    ("resample index 2**62", "_core.resample(x3, o3, i64(1, 2) + 2**62, f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"holds 4611686018427387904"),
    ("resample index -2**63", "_core.resample(x3, o3, np.full((1, 2), -2**63, np.int64), None, i64(1, 2), None, 'max')",
     r"row_index holds"),
    ("resample index strided", "_core.resample(x3, o3, i64(1, 4)[:, ::2], f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"row_index must be C-contiguous"),
    ("resample index misaligned", "_core.resample(x3, o3, np.frombuffer(bytes(17), np.int64, 2, 1).reshape(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"row_index must be aligned"),
    ("resample weight shape", "_core.resample(x3, o3, i64(1, 2), f32(2, 2), i64(1, 2), f32(1, 2), 'sum')",
     r"row_weight has shape \(2, 2\)"),
    ("resample weight float64", "_core.resample(x3, o3, i64(1, 2), f32(1, 2), i64(1, 2), np.ones((1, 2)), 'sum')",
     r"col_weight must be float32"),
    ("resample weight strided", "_core.resample(x3, o3, i64(1, 2), f32(1, 4)[:, ::2], i64(1, 2), f32(1, 2), 'sum')",
     r"row_weight must be C-contiguous"),
    ("resample weight missing", "_core.resample(x3, o3, i64(1, 2), None, i64(1, 2), f32(1, 2), 'sum')",
     r"row_weight is required for reduce='sum'"),
    ("resample weight with max", "_core.resample(x3, o3, i64(1, 2), None, i64(1, 2), f32(1, 2), 'max')",
     r"col_weight must be None for reduce='max'"),
    ("resample reduce name", "_core.resample(x3, o3, i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'mean')",
     r"reduce must be 'sum' or 'max', got 'mean'"),
    ("resample reduce int", "_core.resample(x3, o3, i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 1)", None),
]

# The fast 2-D matmul entry returns None for anything it does not handle (fastattn.ops.matmul
# then validates and reports in Python); it must never crash or convert.
NONE_OR_ERROR = [
    ("matmul_2d lists", "_core.matmul_2d([[1.0]], [[1.0]], False, False, None, None, None, None)"),
    ("matmul_2d list bias", "_core.matmul_2d(x, f32(4, 3), False, False, [1.0] * 3, None, None, None)"),
    ("matmul_2d list residual", "_core.matmul_2d(x, f32(4, 3), False, False, None, None, [[1.0] * 3] * 3, None)"),
    ("matmul_2d list out", "_core.matmul_2d(x, f32(4, 3), False, False, None, None, None, [[0.0] * 3] * 3)"),
    ("matmul_2d read-only out", "_core.matmul_2d(x, f32(4, 3), False, False, None, None, None, ro(f32(3, 3)))"),
    ("matmul_2d zero-stride out", "_core.matmul_2d(x, f32(4, 3), False, False, None, None, None, zero_stride((3, 3)))"),
    ("matmul_2d out overlaps a", "_core.matmul_2d(buf[:12].reshape(3, 4), f32(4, 3), False, False, None, None, None, buf[:9].reshape(3, 3))"),
    ("matmul_2d transpose int", "_core.matmul_2d(x, f32(3, 3), 1, False, None, None, None, None)"),
    ("matmul_2d activation int", "_core.matmul_2d(x, f32(4, 3), False, False, None, 3, None, None)"),
    ("matmul_2d inner", "_core.matmul_2d(x, f32(5, 3), False, False, None, None, None, None)"),
    ("matmul_2d float64", "_core.matmul_2d(x.astype(np.float64), f32(4, 3), False, False, None, None, None, None)"),
]

# Inputs that are valid though unusual: broadcast (zero-stride) and read-only inputs, empty
# arrays. Must run.
VALID = [
    ("matmul_lowp read-only storage, K = 0, M = 0", "_core.matmul_lowp(x, 'q4', ro(lw4), ro(ls.copy()), 4, 3, f32(3, 3), f32(3), 'silu', f32(3, 3)); "
     "_core.matmul_lowp(f32(2, 0), 'q8', np.zeros((3, 0), np.int8), np.zeros((3, 0), np.float16), 0, 3, f32(2, 3), f32(3), None, None); "
     "_core.matmul_lowp(f32(0, 4), 'float16', lw16.view(np.float16), None, 4, 3, f32(0, 3), None, None, None)"),
    ("softmax broadcast x", "_core.softmax(np.broadcast_to(f32(4), (3, 4)), f32(3, 4), False)"),
    ("layer_norm read-only x", "_core.layer_norm(ro(f32(3, 4)), None, None, 0.0, f32(3, 4))"),
    ("matmul broadcast a, b", "_core.matmul(bc((3, 4)), bc((4, 5)), f32(3, 5), None, None, None)"),
    ("matmul broadcast batch", "_core.matmul(bc((2, 3, 4)), bc((2, 4, 5)), f32(2, 3, 5), None, None, np.broadcast_to(f32(5), (2, 3, 5)))"),
    ("matmul empty out, huge broadcast batch",
     "_core.matmul(bc((2**40, 0, 4)), bc((2**40, 4, 3)), np.empty((2**40, 0, 3), np.float32), None, None, None)"),
    ("pack_b broadcast", "_core.matmul_pack_b(bc((3, 4)), packed_34)"),
    ("attention broadcast k v mask", "_core.attention(q4, np.broadcast_to(f32(4), (1, 1, 5, 4)), np.broadcast_to(f32(4), (1, 1, 5, 4)), f32(1, 2, 3, 4), np.broadcast_to(np.ones(5, bool), (1, 2, 3, 5)), True, 2**62, 1e38, f32(1, 2, 3, 5))"),
    ("attention rel broadcast, reversed, weights", "_core.attention(q4, k4, v4, f32(1, 2, 3, 4), None, True, 2, 0.5, f32(1, 2, 3, 5), bc((1, 2, 3, 1)), f32(1, 2, 3, 5)[..., ::-1])"),
    ("attention rel no keys, huge broadcast width", "_core.attention(q4, f32(1, 1, 0, 4), f32(1, 1, 0, 4), f32(1, 2, 3, 4), None, False, 0, 1.0, f32(1, 2, 3, 0), f32(1, 2, 3, 0), bc((1, 2, 3, 2**40)))"),
    ("attention rel decode path", "_core.attention(f32(1, 2, 1, 4), k4, v4, f32(1, 2, 1, 4), None, False, 0, 1.0, None, bc((1, 2, 1, 5)), bc((1, 2, 1, 1)))"),
    ("attention in place", "[_core.attention(a, k4, v4, a, None, False, 0, 0.5, None) for a in [f32(1, 2, 3, 4)]]"),
    ("kv_attend in place", "[_core.kv_attend(store, store.copy(), 0, a, a, 2, 0, 1.0) for a in [f32(1, 1, 2, 4)]]"),
    ("kv 16-bit append, attend in place", "[(_core.kv_append(u16store, u16store.copy(), 0, f32(1, 1, 3, 4), f32(1, 1, 3, 4), 6, 'bfloat16'), "
     "_core.kv_attend(u16store, u16store.copy(), 0, a, a, 2, 0, 1.0, 'float16')) for a in [f32(1, 1, 2, 4)]]"),
    ("kv conversions empty and 0-d", "_core.kv_to_float32(np.zeros((0, 3), np.uint16), f32(0, 3), 'float16'); "
     "_core.kv_from_float32(np.array(2.0, np.float32), np.zeros((), np.uint16), 'bfloat16')"),
    ("softmax empty rows", "_core.softmax(f32(3, 0), f32(3, 0), True); _core.softmax(f32(0, 4), f32(0, 4), False)"),
    ("norms empty", "_core.layer_norm(f32(3, 0), f32(0), f32(0), 1e-5, f32(3, 0)); _core.rms_norm(f32(0, 4), None, 0.0, f32(0, 4))"),
    ("matmul K = 0", "_core.matmul(f32(3, 0), f32(0, 4), f32(3, 4), f32(4), 'relu', f32(3, 4))"),
    ("matmul_packed K = 0", "_core.matmul_packed(f32(3, 0), f32(0), 0, 4, f32(3, 4), None, None, None)"),
    ("attention empty", "_core.attention(f32(1, 2, 0, 4), k4, v4, f32(1, 2, 0, 4), None, True, 0, 1.0, f32(1, 2, 0, 5))"),
    ("attention Dv = 0, weights", "_core.attention(q4, k4, f32(1, 1, 5, 0), f32(1, 2, 3, 0), None, False, 0, 1.0, f32(1, 2, 3, 5))"),
    ("rope rot 0", "_core.rope(q4, f32(1, 3, 0), f32(1, 3, 0), f32(1, 2, 3, 4), 0, True)"),
    ("conv2d read-only inputs, epilogue", "conv(x=ro(f32(1, 4, 8, 8)), bias=ro(f32(6)), res=ro(f32(1, 6, 6, 6)), act='gelu')"),
    ("conv2d no input channels", "conv(x=f32(2, 0, 5, 5), w=f32(3, 0, 3, 3), out=f32(2, 3, 3, 3), bias=f32(3))"),
    ("conv2d empty batch, huge padding", "conv(x=f32(0, 4, 8, 8), out=f32(0, 6, 2**20 + 6, 6), p=(2**19, 2**19, 0, 0))"),
    ("conv2d depthwise", "conv(w=f32(8, 1, 3, 3), out=f32(1, 8, 8, 8), p=(1, 1, 1, 1), g=4)"),
    ("conv_transpose2d empty batch", "convt(x=f32(0, 4, 8, 8), out=f32(0, 6, 10, 10))"),
    ("conv_transpose2d two groups, stride 2", "convt(w=f32(4, 3, 2, 2), out=f32(1, 6, 16, 16), s=(2, 2), g=2)"),
    ("set_num_threads max", "_core.set_num_threads(1024); _core.set_num_threads(1)"),
    ("resample max, taps -1", "_core.resample(x3, o3, i64(3, 2) - 1, None, i64(1, 2) + 3, None, 'max')"),
    ("resample no taps, empty", "_core.resample(f32(0, 3, 4), f32(0, 2, 2), i64(0, 2), f32(0, 2), i64(0, 2), f32(0, 2), 'sum'); "
     "_core.resample(x3, f32(2, 0, 5), i64(2, 0), f32(2, 0), i64(1, 5) - 1, f32(1, 5), 'sum')"),
    ("resample read-only x", "_core.resample(ro(f32(2, 3, 4)), o3, i64(1, 2), f32(1, 2), i64(1, 2), f32(1, 2), 'sum')"),
]

RUNNER = """
import json, sys
def run(kind, cases):
    for case in cases:
        name, code = case[0], case[1]
        print(json.dumps({"start": name}), flush=True)
        try:
            exec(code)
            result = "returned"
        except (TypeError, ValueError) as e:
            result = type(e).__name__ + ": " + str(e)
        except BaseException as e:
            result = "OTHER " + type(e).__name__ + ": " + str(e)
        print(json.dumps({"name": name, "kind": kind, "result": result}), flush=True)
"""


def _run_cases(cases_by_kind):
    body = [textwrap.dedent(SETUP), RUNNER]
    for kind, cases in cases_by_kind.items():
        # matmul_2d's cases must return None: the code is wrapped in an assertion
        wrap = "assert ({}) is None" if kind == "none_or_error" else "{}"
        body.append(f"run({kind!r}, {[(c[0], wrap.format(c[1])) for c in cases]!r})")
    proc = subprocess.run([sys.executable, "-c", "\n".join(body)], capture_output=True,
                          text=True, timeout=300)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    started = [line["start"] for line in lines if "start" in line]
    if proc.returncode != 0:
        pytest.fail(f"the subprocess died (exit {proc.returncode}) during {started[-1]!r}:\n"
                    f"{proc.stderr[-2000:]}")
    return {line["name"]: line["result"] for line in lines if "name" in line}


@pytest.fixture(scope="module")
def results():
    return _run_cases({"hostile": HOSTILE, "none_or_error": NONE_OR_ERROR, "valid": VALID})


@pytest.mark.parametrize("name,code,pattern", HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_call_raises_type_or_value_error(results, name, code, pattern):
    import re
    result = results[name]
    assert result.startswith(("TypeError: ", "ValueError: ")), f"{code}\n-> {result}"
    if pattern is not None:
        assert re.search(pattern, result), f"{code}\n-> {result}"


@pytest.mark.parametrize("name,code", NONE_OR_ERROR, ids=[c[0] for c in NONE_OR_ERROR])
def test_matmul_2d_returns_none_for_what_it_does_not_handle(results, name, code):
    assert results[name] == "returned", f"{code}\n-> {results[name]}"


@pytest.mark.parametrize("name,code", VALID, ids=[c[0] for c in VALID])
def test_unusual_but_valid_calls_run(results, name, code):
    assert results[name] == "returned", f"{code}\n-> {results[name]}"


def test_every_core_entry_point_has_hostile_cases():
    functions = {n for n in dir(_core) if not n.startswith("_") and callable(getattr(_core, n))}
    covered = set()
    for _, code, *_ in HOSTILE + NONE_OR_ERROR:
        covered.update(n for n in functions if f"_core.{n}(" in code)
    assert functions - covered == set()


def test_lists_are_never_converted_into_a_dying_temporary():
    # The symptom before: 92 wrong columns with values like 2.8e19 (freed memory read as bias).
    a = np.ones((4, 96), np.float32)
    b = np.ones((96, 96), np.float32)
    out = np.empty((4, 96), np.float32)
    with pytest.raises(TypeError, match=r"matmul: bias must be a numpy.ndarray, got list"):
        _core.matmul(a, b, out, [1.0] * 96, None, None)
    assert _core.matmul_2d(a, b, False, False, [1.0] * 96, None, None, None) is None
