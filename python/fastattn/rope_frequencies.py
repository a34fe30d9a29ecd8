"""RoPE frequencies and their context-extension scalings, in float64 (pure Python + NumPy).

Shared by the kernel wrapper ``fastattn.rope`` and the reference ``fastattn.reference.rope``:
the frequencies are the specification (Hugging Face's ``rope_scaling`` semantics), the rotation
is what each of them implements independently.

For a rotary dimension ``d`` (even) and base ``theta`` the unscaled inverse frequencies are

    inv_freq_i = theta ** (-2 i / d),   i = 0 .. d/2 - 1

and position ``p`` rotates pair ``i`` by the angle ``p * inv_freq_i``. A scaling dict, as in a
Hugging Face ``config.json`` (``rope_scaling`` in transformers 4.x, ``rope_parameters`` in 5.x;
the type under ``"rope_type"`` or the legacy ``"type"``), changes the frequencies and may add an
attention factor ``a`` that multiplies cos and sin (so q.k gains a^2). The formulas follow
transformers' ``modeling_rope_utils.py``; transformers evaluates them in float32, we in float64,
so frequencies agree to float32 rounding (~6e-8 relative).

``linear`` (position interpolation, kaiokendev):  inv_freq_i / factor.

``dynamic`` (dynamic NTK, bloc97 / emozilla): for a sequence of length ``L`` beyond the original
  context ``L0`` (``original_max_position_embeddings``, or ``max_position_embeddings``), the base
  grows:  theta' = theta * (factor * L / L0 - (factor - 1)) ** (d / (d - 2)),  L = max(L, L0).
  Here ``L`` is max(positions) + 1 of the call (transformers uses the longest length seen so far,
  which is the same for a stream that only grows).

``yarn`` (Peng et al. 2023): with ``factor`` s, ``L0`` = ``original_max_position_embeddings``,
  ``beta_fast`` (default 32) and ``beta_slow`` (default 1):
    dim_of(r) = d * ln(L0 / (2 pi r)) / (2 ln theta)          (the pair doing r turns over L0)
    low = max(floor(dim_of(beta_fast)), 0), high = min(ceil(dim_of(beta_slow)), d - 1)
          (no floor/ceil when ``truncate`` is False; high += 0.001 if low == high)
    ramp_i = clip((i - low) / (high - low), 0, 1)
    inv_freq_i = (inv_freq_i / s) * ramp_i + inv_freq_i * (1 - ramp_i)
  attention factor: ``attention_factor`` if given; else, with ``mscale`` and ``mscale_all_dim``
  both set, m(s, mscale) / m(s, mscale_all_dim); else m(s, 1), where
    m(s, k) = 1 if s <= 1 else 0.1 k ln(s) + 1.

``llama3`` (Llama 3.1): with ``factor``, ``low_freq_factor``, ``high_freq_factor`` and ``L0``:
    wavelen_i = 2 pi / inv_freq_i
    wavelen_i > L0 / low_freq_factor   -> inv_freq_i / factor         (long waves: interpolate)
    wavelen_i < L0 / high_freq_factor  -> inv_freq_i                  (short waves: keep)
    otherwise, with g = (L0 / wavelen_i - low_freq_factor) / (high_freq_factor - low_freq_factor):
                                          (1 - g) inv_freq_i / factor + g inv_freq_i
"""
from __future__ import annotations

import math
import numbers

import numpy as np

SCALING_TYPES = ("default", "linear", "dynamic", "yarn", "llama3")

# RoFormer's base, the default of every rope entry point (resolve_rope_config tells it apart
# from a theta passed explicitly)
DEFAULT_THETA = 10000.0


def _number(op: str, scaling: dict, key: str, default=None, positive=True) -> float | None:
    value = scaling.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{op}: scaling[{key!r}] must be a finite number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{op}: scaling[{key!r}] must be > 0, got {value!r}")
    return float(value)


def _required(op: str, scaling: dict, key: str, kind: str) -> float:
    if scaling.get(key) is None:
        raise ValueError(f"{op}: {kind} scaling needs {key!r} in the scaling dict")
    return _number(op, scaling, key)


def _original_length(op: str, scaling: dict, kind: str) -> float:
    for key in ("original_max_position_embeddings", "max_position_embeddings"):
        if scaling.get(key) is not None:
            return _number(op, scaling, key)
    raise ValueError(f"{op}: {kind} scaling needs 'original_max_position_embeddings' in the "
                     "scaling dict")


def scaling_type(op: str, scaling) -> str:
    """The scaling's type name ('default' for None), validated."""
    if scaling is None:
        return "default"
    if not isinstance(scaling, dict):
        raise TypeError(f"{op}: scaling must be a dict (Hugging Face rope_scaling) or None, "
                        f"got {type(scaling).__name__}")
    kind = scaling.get("rope_type", scaling.get("type", "default"))
    if kind not in SCALING_TYPES:
        raise ValueError(f"{op}: unsupported scaling type {kind!r}; supported: "
                         f"{', '.join(SCALING_TYPES)}")
    return kind


def rope_frequencies(dim: int, theta: float = DEFAULT_THETA, scaling: dict | None = None,
                     seq_len: int | None = None, op: str = "rope") -> tuple[np.ndarray, float]:
    """(inv_freq, attention_factor): the ``dim // 2`` inverse frequencies (float64) and the
    factor that multiplies cos and sin, for rotary dimension ``dim``. ``seq_len`` (the
    sequence length, max position + 1) matters only for ``dynamic`` scaling."""
    kind = scaling_type(op, scaling)
    d = int(dim)
    i = np.arange(d // 2, dtype=np.float64)
    inv_freq = theta ** (-2.0 * i / d)
    if kind == "default":
        return inv_freq, 1.0
    if kind == "linear":
        return inv_freq / _required(op, scaling, "factor", kind), 1.0
    if kind == "dynamic":
        factor = _required(op, scaling, "factor", kind)
        L0 = _original_length(op, scaling, kind)
        L = max(float(seq_len or 0), L0)
        if L == L0:
            return inv_freq, 1.0
        if d <= 2:
            raise ValueError(f"{op}: dynamic scaling needs rotary_dim > 2, got {d}")
        base = theta * (factor * L / L0 - (factor - 1)) ** (d / (d - 2))
        return base ** (-2.0 * i / d), 1.0
    if kind == "yarn":
        return _yarn(op, scaling, d, theta, inv_freq)
    return _llama3(op, scaling, inv_freq)


def _yarn(op: str, scaling: dict, d: int, theta: float, inv_freq: np.ndarray):
    s = _required(op, scaling, "factor", "yarn")
    L0 = _original_length(op, scaling, "yarn")

    def m(scale: float, k: float) -> float:
        return 1.0 if scale <= 1 else 0.1 * k * math.log(scale) + 1.0

    attention = _number(op, scaling, "attention_factor")
    if attention is None:
        mscale = _number(op, scaling, "mscale", positive=False)
        mscale_all = _number(op, scaling, "mscale_all_dim", positive=False)
        attention = m(s, mscale) / m(s, mscale_all) if mscale and mscale_all else m(s, 1.0)
    # transformers reads these with `or`, so 0 / None mean the defaults too
    beta_fast = _number(op, scaling, "beta_fast", positive=False) or 32.0
    beta_slow = _number(op, scaling, "beta_slow", positive=False) or 1.0

    if theta == 1.0:
        raise ValueError(f"{op}: yarn scaling needs theta != 1 (its ramp divides by ln theta), "
                         f"got theta {theta}")

    def dim_of(rotations: float) -> float:
        return d * math.log(L0 / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low, high = dim_of(beta_fast), dim_of(beta_slow)
    if scaling.get("truncate", True):
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, d - 1)
    if low == high:
        high += 0.001  # the ramp would divide by zero
    ramp = np.clip((np.arange(d // 2, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    return (inv_freq / s) * ramp + inv_freq * (1.0 - ramp), float(attention)


def _llama3(op: str, scaling: dict, inv_freq: np.ndarray):
    factor = _required(op, scaling, "factor", "llama3")
    low_ff = _required(op, scaling, "low_freq_factor", "llama3")
    high_ff = _required(op, scaling, "high_freq_factor", "llama3")
    L0 = _original_length(op, scaling, "llama3")
    if high_ff <= low_ff:
        raise ValueError(f"{op}: llama3 scaling needs high_freq_factor > low_freq_factor, got "
                         f"{high_ff} and {low_ff}")
    wavelen = 2 * math.pi / inv_freq
    g = (L0 / wavelen - low_ff) / (high_ff - low_ff)
    smoothed = (1 - g) * inv_freq / factor + g * inv_freq
    out = np.where(wavelen > L0 / low_ff, inv_freq / factor, smoothed)
    return np.where(wavelen < L0 / high_ff, inv_freq, out), 1.0


def resolve_rope_config(op: str, theta: float, rotary_dim, head_dim: int, scaling):
    """(theta, rotary_dim) once a transformers 5.x ``rope_parameters`` dict has had its say:
    its ``rope_theta`` replaces the default theta, its ``partial_rotary_factor`` f gives
    rotary_dim = int(head_dim * f) when none is passed (transformers' formula). A value passed
    explicitly that contradicts the dict raises ValueError instead of silently winning."""
    scaling_type(op, scaling)
    if scaling is None:
        return theta, rotary_dim
    if scaling.get("rope_theta") is not None:
        dict_theta = _number(op, scaling, "rope_theta")
        if theta not in (DEFAULT_THETA, dict_theta):
            raise ValueError(f"{op}: theta={theta} contradicts scaling['rope_theta']="
                             f"{dict_theta}")
        theta = dict_theta
    if scaling.get("partial_rotary_factor") is not None:
        dict_dim = int(head_dim * _number(op, scaling, "partial_rotary_factor"))
        if rotary_dim is not None and rotary_dim != dict_dim:
            raise ValueError(f"{op}: rotary_dim={rotary_dim} contradicts "
                             f"scaling['partial_rotary_factor'] (head_dim {head_dim} -> "
                             f"{dict_dim})")
        rotary_dim = dict_dim
    return theta, rotary_dim


def scaling_key(op: str, scaling) -> tuple:
    """A hashable, validated identity of a scaling dict (for table caches)."""
    kind = scaling_type(op, scaling)
    if scaling is None:
        return (kind,)
    return (kind,) + tuple(sorted((str(k), repr(v)) for k, v in scaling.items()))


def dynamic_original_length(op: str, scaling) -> float | None:
    """L0 of a ``dynamic`` scaling (its frequencies change beyond it), else None."""
    if scaling_type(op, scaling) != "dynamic":
        return None
    return _original_length(op, scaling, "dynamic")
