"""RoPE frequencies and their scalings (fastattn.rope_frequencies), each formula checked
against transformers' modeling_rope_utils written out per frequency."""
import math

import numpy as np
import pytest

from fastattn.rope_frequencies import rope_frequencies

# One case per scaling type (and yarn with DeepSeek-style mscale); test_rope.py runs the
# kernel over the same dicts.
SCALINGS = {
    "none": None,
    "linear": {"rope_type": "linear", "factor": 4.0},
    "dynamic": {"type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 64},
    "yarn": {"rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 64},
    "yarn_mscale": {"rope_type": "yarn", "factor": 40.0, "original_max_position_embeddings": 128,
                    "mscale": 0.707, "mscale_all_dim": 0.707, "beta_fast": 16,
                    "truncate": False},
    "llama3": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
               "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
}


def _hand_inv_freq(kind, d, theta, s, seq_len=None):
    """Each formula of transformers' modeling_rope_utils, written per frequency in floats."""
    out = []
    for i in range(d // 2):
        w = theta ** (-2 * i / d)
        if kind == "linear":
            w = w / s["factor"]
        elif kind == "dynamic":
            L0, f = s["original_max_position_embeddings"], s["factor"]
            L = max(seq_len, L0)
            base = theta * ((f * L / L0) - (f - 1)) ** (d / (d - 2))
            w = base ** (-2 * i / d)
        elif kind == "llama3":
            L0, f = s["original_max_position_embeddings"], s["factor"]
            lo, hi = s["low_freq_factor"], s["high_freq_factor"]
            wavelen = 2 * math.pi / w
            if wavelen > L0 / lo:
                w = w / f
            elif wavelen >= L0 / hi:
                g = (L0 / wavelen - lo) / (hi - lo)
                w = (1 - g) * w / f + g * w
        elif kind == "yarn":
            L0, f = s["original_max_position_embeddings"], s["factor"]
            fast, slow = s.get("beta_fast", 32), s.get("beta_slow", 1)
            dim_of = lambda r: d * math.log(L0 / (r * 2 * math.pi)) / (2 * math.log(theta))  # noqa
            low, high = dim_of(fast), dim_of(slow)
            if s.get("truncate", True):
                low, high = math.floor(low), math.ceil(high)
            low, high = max(low, 0), min(high, d - 1)
            high = high + 0.001 if low == high else high
            ramp = min(max((i - low) / (high - low), 0.0), 1.0)
            w = (w / f) * ramp + w * (1 - ramp)
        out.append(w)
    return np.array(out)


@pytest.mark.parametrize("name", ["linear", "dynamic", "yarn", "yarn_mscale", "llama3"])
@pytest.mark.parametrize("d", [16, 64, 128])
def test_scaling_frequencies_by_hand(name, d):
    s = SCALINGS[name]
    kind = s.get("rope_type", s.get("type"))
    for theta, seq_len in [(10000.0, 32), (500000.0, 1000)]:
        got, attention = rope_frequencies(d, theta, s, seq_len)
        np.testing.assert_allclose(got, _hand_inv_freq(kind, d, theta, s, seq_len), rtol=1e-13)
        if name == "yarn":
            assert attention == pytest.approx(0.1 * math.log(8.0) + 1)
        elif name == "yarn_mscale":  # mscale == mscale_all_dim: DeepSeek-V3's factor 1
            assert attention == pytest.approx(1.0)
        else:
            assert attention == 1.0


def test_llama3_frequency_bands():
    # Llama 3.1 (theta 500000, d 128, factor 8, L0 8192): short waves kept, long waves / 8.
    s = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
         "original_max_position_embeddings": 8192}
    base, _ = rope_frequencies(128, 500000.0)
    got, _ = rope_frequencies(128, 500000.0, s)
    wavelen = 2 * np.pi / base
    np.testing.assert_array_equal(got[wavelen < 2048], base[wavelen < 2048])
    np.testing.assert_allclose(got[wavelen > 8192], base[wavelen > 8192] / 8, rtol=1e-15)
    mid = (wavelen >= 2048) & (wavelen <= 8192)
    assert mid.any() and np.all(got[mid] < base[mid]) and np.all(got[mid] > base[mid] / 8)


def test_dynamic_is_default_within_original_length():
    s = SCALINGS["dynamic"]
    np.testing.assert_array_equal(rope_frequencies(32, 1e4, s, 64)[0], rope_frequencies(32)[0])
    assert np.all(rope_frequencies(32, 1e4, s, 65)[0][1:] < rope_frequencies(32)[0][1:])
