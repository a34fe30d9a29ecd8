"""Layers against the op references composed in float64: Linear (both weight layouts, fused
epilogue), Embedding, MLPs, self- and cross-attention (MHA/GQA, RoPE, padding masks), and
pre-/post-norm transformer blocks."""
import numpy as np
import pytest

from fastattn import reference as R
from fastattn.reference.models import merge_heads as merge, split_heads as heads
from fastattn.layers import (MLP, Attention, Embedding, GatedMLP, LayerNorm, Linear, RMSNorm,
                             RotaryConfig, TransformerBlock)


def w(rng, *shape, scale=0.3):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def f64(x):
    return np.asarray(x, np.float64)


# Outputs are O(1) sums of K <= 96 float32 products, one to three matmuls deep: a relative
# error of ~K * 2^-24 per matmul stays under 1e-5 of the output's scale with margin.
def close(got, want, rel=1e-5):
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=0, atol=rel * max(np.abs(want).max(), 1.0))


@pytest.mark.parametrize("layout", ["out_in", "in_out"])
def test_linear_layouts_and_fused_epilogue(rng, layout):
    x, weight, b = w(rng, 2, 5, 24), w(rng, 40, 24), w(rng, 40)
    r = w(rng, 2, 5, 40)
    stored = weight if layout == "out_in" else np.ascontiguousarray(weight.T)
    lin = Linear(stored, b, layout=layout)
    assert (lin.in_features, lin.out_features) == (24, 40)
    z = f64(x) @ f64(weight).T + f64(b)
    close(lin(x), z)
    close(lin(x, activation="gelu_tanh", residual=r), R.gelu(z, "tanh") + f64(r))
    with pytest.raises(ValueError, match="bias"):
        Linear(stored, w(rng, 39), layout=layout)
    with pytest.raises(ValueError, match="layout"):
        Linear(stored, layout="rows")


def test_linear_concat_equals_separate_layers(rng):
    x = w(rng, 3, 16)
    parts = [(w(rng, 8, 16), w(rng, 8)), (w(rng, 4, 16), None)]
    y = Linear.concat(parts)(x)
    close(y[:, :8], f64(x) @ f64(parts[0][0]).T + f64(parts[0][1]))
    close(y[:, 8:], f64(x) @ f64(parts[1][0]).T)


def test_embedding_lookup_and_errors(rng):
    table = w(rng, 10, 4)
    emb = Embedding(table)
    assert np.array_equal(emb(np.array([[3, 0, 9]])), table[[[3, 0, 9]]])
    with pytest.raises(ValueError, match="10"):
        emb(np.array([10]))
    with pytest.raises(ValueError, match="-1"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match="integers"):
        emb(np.array([1.0]))


def test_mlps(rng):
    x = w(rng, 2, 3, 16)
    fc, proj = w(rng, 32, 16), w(rng, 16, 32)
    mlp = MLP(Linear(fc), Linear(proj), "gelu")
    close(mlp(x, residual=x), R.gelu(f64(x) @ f64(fc).T) @ f64(proj).T + f64(x))
    gate, up, down = w(rng, 24, 16), w(rng, 24, 16), w(rng, 16, 24)
    gated = GatedMLP(Linear.concat([(gate, None), (up, None)]), Linear(down))
    want = (R.silu(f64(x) @ f64(gate).T) * (f64(x) @ f64(up).T)) @ f64(down).T
    close(gated(x), want)


def _self_attention(rng, hq, hkv, d, hidden, rotary=None, causal=True):
    wq, wk, wv, wo = (w(rng, hq * d, hidden), w(rng, hkv * d, hidden), w(rng, hkv * d, hidden),
                      w(rng, hidden, hq * d))
    layer = Attention(Linear.concat([(wq, None), (wk, None), (wv, None)]), Linear(wo), hq, hkv,
                      d, rotary=rotary, causal=causal)
    return layer, (wq, wk, wv, wo)


@pytest.mark.parametrize("hq,hkv", [(4, 4), (4, 2), (4, 1)])
def test_self_attention_with_rope_and_padding(rng, hq, hkv):
    d, hidden = 8, 32
    rot = RotaryConfig(theta=10000.0)
    layer, (wq, wk, wv, wo) = _self_attention(rng, hq, hkv, d, hidden, rotary=rot)
    x = w(rng, 2, 7, hidden, scale=1.0)
    positions = np.broadcast_to(np.arange(7), (2, 7))
    key_mask = np.ones((2, 7), bool)
    key_mask[1, :2] = False
    q = R.rope(heads(f64(x) @ f64(wq).T, hq), positions)
    k = R.rope(heads(f64(x) @ f64(wk).T, hkv), positions)
    v = heads(f64(x) @ f64(wv).T, hkv)
    o = R.attention(q, k, v, mask=key_mask[:, None, None, :], causal=True)
    want = merge(o) @ f64(wo).T
    got = layer(x, positions=positions, key_mask=key_mask)
    close(got[0], want[0])
    close(got[1, 2:], want[1, 2:])   # padded query rows attend nothing real: not compared


def test_cross_attention(rng):
    hq, hkv, d, hidden, hidden_c = 4, 2, 8, 32, 12
    wq, wkv, wo = w(rng, hq * d, hidden), w(rng, 2 * hkv * d, hidden_c), w(rng, hidden, hq * d)
    layer = Attention.cross(Linear(wq), Linear(wkv), Linear(wo), hq, hkv, d)
    x, ctx = w(rng, 2, 5, hidden, scale=1.0), w(rng, 2, 9, hidden_c, scale=1.0)
    key_mask = np.ones((2, 9), bool)
    key_mask[0, 6:] = False
    kv = f64(ctx) @ f64(wkv).T
    q = heads(f64(x) @ f64(wq).T, hq)
    k, v = heads(kv[..., : hkv * d], hkv), heads(kv[..., hkv * d:], hkv)
    want = merge(R.attention(q, k, v, mask=key_mask[:, None, None, :])) @ f64(wo).T
    close(layer(x, context=ctx, key_mask=key_mask), want)
    # precomputed context keys/values give the same bits
    got = layer(x, context_kv=layer.project_context(ctx), key_mask=key_mask)
    assert np.array_equal(got, layer(x, context=ctx, key_mask=key_mask))
    self_layer, _ = _self_attention(rng, hq, hkv, d, hidden)
    with pytest.raises(ValueError, match="cross-attention"):
        self_layer(x, context=x)
    with pytest.raises(ValueError, match="projection"):
        Attention.cross(Linear(wq), Linear(w(rng, 5, hidden_c)), Linear(wo), hq, hkv, d)


@pytest.mark.parametrize("prenorm", [True, False])
def test_transformer_block(rng, prenorm):
    hq, d, hidden = 4, 8, 32
    attn, (wq, wk, wv, wo) = _self_attention(rng, hq, hq, d, hidden, causal=prenorm)
    fc, proj = w(rng, 64, hidden), w(rng, hidden, 64)
    g1, b1, g2, b2 = 1 + w(rng, hidden), w(rng, hidden), 1 + w(rng, hidden), w(rng, hidden)
    block = TransformerBlock(attn, MLP(Linear(fc), Linear(proj), "gelu"),
                             LayerNorm(g1, b1, 1e-5), LayerNorm(g2, b2, 1e-5), prenorm=prenorm)
    x = w(rng, 1, 6, hidden, scale=1.0)

    def attn_ref(a):
        q, k, v = (heads(f64(a) @ f64(m).T, hq) for m in (wq, wk, wv))
        return merge(R.attention(q, k, v, causal=prenorm)) @ f64(wo).T

    def mlp_ref(a):
        return R.gelu(a @ f64(fc).T) @ f64(proj).T

    def ln(a, g, b):
        return R.layer_norm(a, f64(g), f64(b), 1e-5)

    if prenorm:
        h = f64(x) + attn_ref(ln(f64(x), g1, b1))
        want = h + mlp_ref(ln(h, g2, b2))
    else:
        h = ln(f64(x) + attn_ref(f64(x)), g1, b1)
        want = ln(h + mlp_ref(h), g2, b2)
    got, probs = block(x, return_weights=True)
    close(got, want)
    assert probs.shape == (1, hq, 6, 6)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-6)
    close(RMSNorm(g1, 1e-6)(x), R.rms_norm(f64(x), f64(g1), 1e-6))
