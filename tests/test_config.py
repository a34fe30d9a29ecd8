"""load_config: config.json normalised into the families' config dataclasses (models/<family>/
config.py; transformers 4.x and 5.x RoPE layouts, sliding windows, Hub configs), errors that
name the key, unknown model types, configs from files."""
import json

import numpy as np
import pytest

from fastattn.io import load_config

from conftest import BERT, LLAMA, TINY_GPT2


# -- config.json ----------------------------------------------------------------------------------

LLAMA3_SCALING = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 8192}


def test_llama_defaults():
    c = load_config(LLAMA)
    assert (c.head_dim, c.num_key_value_heads, c.rms_norm_eps, c.hidden_act) == (16, 2, 1e-6,
                                                                                "silu")
    assert (c.rope_theta, c.rope_scaling, c.partial_rotary_factor) == (10000.0, None, 1.0)
    assert (c.tie_word_embeddings, c.attention_bias, c.mlp_bias, c.qkv_bias) == (False,) * 4
    assert c.sliding_window is None
    assert load_config({**LLAMA, "num_key_value_heads": None}).num_key_value_heads == 4
    assert load_config({k: v for k, v in LLAMA.items()
                        if k != "max_position_embeddings"}).max_position_embeddings == 2048


def test_head_dim_null_or_explicit():
    assert load_config({**LLAMA, "head_dim": None}).head_dim == 64 // 4
    assert load_config({**LLAMA, "head_dim": 32}).head_dim == 32  # Mistral-Nemo style
    with pytest.raises(ValueError, match="hidden_size .66. must be a multiple of "
                                         "num_attention_heads .4."):
        load_config({**LLAMA, "hidden_size": 66})


@pytest.mark.parametrize("v4, v5", [
    # llama3 (Llama 3.1): 4.x writes rope_theta + rope_scaling, 5.x one rope_parameters dict
    ({"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", **LLAMA3_SCALING}},
     {"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, **LLAMA3_SCALING}}),
    # older 4.x dicts name the type "type"; transformers 4.4x writes both keys
    ({"rope_theta": 10000.0, "rope_scaling": {"type": "linear", "factor": 2.0}},
     {"rope_parameters": {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}}),
    ({"rope_scaling": {"type": "linear", "rope_type": "linear", "factor": 2.0}},
     {"rope_parameters": {"rope_type": "linear", "factor": 2.0}}),
])
def test_rope_4x_and_5x_agree(v4, v5):
    a, b = load_config({**LLAMA, **v4}), load_config({**LLAMA, **v5})
    assert (a.rope_theta, a.rope_scaling) == (b.rope_theta, b.rope_scaling)
    assert "type" not in a.rope_scaling and "rope_theta" not in a.rope_scaling


def test_rope_normalised_values_by_hand():
    c = load_config({**LLAMA, "rope_theta": 500000, "rope_scaling": {"rope_type": "llama3",
                                                                    **LLAMA3_SCALING}})
    assert c.rope_theta == 500000.0 and isinstance(c.rope_theta, float)
    assert c.rope_scaling == {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
    # dynamic / yarn: transformers reads the original length from max_position_embeddings
    c = load_config({**LLAMA, "rope_scaling": {"type": "dynamic", "factor": 2.0}})
    assert c.rope_scaling == {"rope_type": "dynamic", "factor": 2.0,
                              "original_max_position_embeddings": 2048}
    c = load_config({**LLAMA, "model_type": "qwen2", "rope_parameters": {
        "rope_type": "yarn", "rope_theta": 1000000.0, "factor": 4.0,
        "original_max_position_embeddings": 32768}})
    assert c.rope_theta == 1e6
    assert c.rope_scaling == {"rope_type": "yarn", "factor": 4.0,
                              "original_max_position_embeddings": 32768}
    c = load_config({**LLAMA, "rope_parameters": {"rope_type": "yarn", "factor": 4.0,
                                                  "beta_fast": 32, "truncate": False}})
    assert c.rope_scaling == {"rope_type": "yarn", "factor": 4.0, "beta_fast": 32,
                              "truncate": False, "original_max_position_embeddings": 2048}
    # default rotation: None whichever way it is written
    for extra in ({"rope_scaling": None}, {"rope_parameters": {"rope_type": "default",
                                                               "rope_theta": 10000.0}},
                  {"rope_scaling": {"rope_type": "default"}}):
        c = load_config({**LLAMA, **extra})
        assert (c.rope_theta, c.rope_scaling) == (10000.0, None)
    c = load_config({**LLAMA, "rope_parameters": {"rope_type": "default", "rope_theta": 1e4,
                                                  "partial_rotary_factor": 0.5}})
    assert c.partial_rotary_factor == 0.5


@pytest.mark.parametrize("extra, message", [
    ({"rope_scaling": {"type": "longrope", "factor": 2.0}}, "rope type 'longrope' is not supp"),
    ({"rope_scaling": {"type": "linear", "rope_type": "dynamic", "factor": 2.0}}, "two types"),
    ({"rope_scaling": {"type": "linear"}}, "needs 'factor'"),
    ({"rope_scaling": {"type": "linear", "factor": "2"}}, r"rope_scaling\['factor'\]"),
    ({"rope_scaling": {"rope_type": "llama3", "factor": 8.0}}, "needs 'low_freq_factor'"),
    ({"rope_scaling": "linear"}, "'rope_scaling' must be an object"),
    ({"rope_theta": 10000.0, "rope_parameters": {"rope_type": "default", "rope_theta": 5e5}},
     "rope_theta values disagree"),
    ({"rope_scaling": {"type": "linear", "factor": 2.0},
      "rope_parameters": {"rope_type": "linear", "factor": 4.0}}, "disagree"),
    ({"rope_theta": -1.0}, "'rope_theta' must be > 0"),
    ({"partial_rotary_factor": 1.5}, r"in \(0, 1\]"),
])
def test_rope_errors(extra, message):
    with pytest.raises(ValueError, match=message):
        load_config({**LLAMA, **extra})


def test_rope_dicts_are_what_the_rope_op_accepts():
    positions = pytest.importorskip("fastattn.rope_frequencies")  # merged from the rope branch
    for scaling in ({"rope_scaling": {"type": "linear", "factor": 2.0}},
                    {"rope_scaling": {"type": "dynamic", "factor": 2.0}},
                    {"rope_parameters": {"rope_type": "yarn", "factor": 4.0}},
                    {"rope_scaling": {"rope_type": "llama3", **LLAMA3_SCALING}}):
        c = load_config({**LLAMA, **scaling})
        inv_freq, _ = positions.rope_frequencies(c.head_dim, c.rope_theta, c.rope_scaling, 4096)
        assert inv_freq.shape == (c.head_dim // 2,) and np.all(np.isfinite(inv_freq))
        assert positions.resolve_rope_config("rope", c.rope_theta, None, c.head_dim,
                                             c.rope_scaling) == (c.rope_theta, None)


def test_qwen2():
    base = {**LLAMA, "model_type": "qwen2", "tie_word_embeddings": True,
            "use_sliding_window": False, "sliding_window": 4096, "max_window_layers": 28}
    c = load_config(base)
    assert c.qkv_bias and not c.attention_bias  # q/k/v biased, o_proj not
    assert c.tie_word_embeddings  # honoured from the json
    assert c.sliding_window is None  # off unless use_sliding_window
    assert load_config({k: v for k, v in base.items()
                        if k != "tie_word_embeddings"}).tie_word_embeddings is False
    # on: only layers >= max_window_layers slide
    assert load_config({**base, "use_sliding_window": True}).sliding_window is None  # 2 < 28
    assert load_config({**base, "use_sliding_window": True,
                        "max_window_layers": 0}).sliding_window == 4096
    with pytest.raises(ValueError, match="some layers use a sliding window"):
        load_config({**base, "use_sliding_window": True, "max_window_layers": 1})
    with pytest.raises(ValueError, match="some layers use a sliding window"):
        load_config({**base, "use_sliding_window": True,
                     "layer_types": ["full_attention", "sliding_attention"]})


def test_mistral_sliding_window():
    mistral = {**LLAMA, "model_type": "mistral"}
    assert load_config({**mistral, "sliding_window": 4096}).sliding_window == 4096
    assert load_config({**mistral, "sliding_window": None}).sliding_window is None
    assert load_config(mistral).sliding_window == 4096  # transformers' MistralConfig default
    assert load_config(mistral).qkv_bias is False
    assert load_config({k: v for k, v in mistral.items()
                        if k != "max_position_embeddings"}).max_position_embeddings == 131072
    with pytest.raises(ValueError, match="'sliding_window' must be >= 1"):
        load_config({**mistral, "sliding_window": 0})
    # llama has no sliding window, whatever a json may carry
    assert load_config({**LLAMA, "sliding_window": 4096}).sliding_window is None


def test_gpt2_defaults():
    c = load_config(TINY_GPT2)
    assert (c.layer_norm_epsilon, c.activation_function, c.n_inner, c.tie_word_embeddings) == \
        (1e-5, "gelu_new", None, True)
    assert load_config({**TINY_GPT2, "n_inner": 32}).n_inner == 32
    with pytest.raises(ValueError, match="scale_attn_by_inverse_layer_idx"):
        load_config({**TINY_GPT2, "scale_attn_by_inverse_layer_idx": True})
    with pytest.raises(ValueError, match="n_embd .8. must be a multiple of n_head .3."):
        load_config({**TINY_GPT2, "n_head": 3})


def test_bert_defaults_and_position_embedding_type():
    c = load_config(BERT)
    assert (c.hidden_act, c.type_vocab_size, c.layer_norm_eps, c.pad_token_id,
            c.position_embedding_type) == ("gelu", 2, 1e-12, 0, "absolute")
    with pytest.raises(ValueError, match="position_embedding_type 'relative_key' is not"):
        load_config({**BERT, "position_embedding_type": "relative_key"})


# config.json files as the Hub serves them (sizes of the released models), normalised by hand
HUB_CONFIGS = {
    "llama-3.1-8b": ({
        "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": True, "vocab_size": 128256},
        {"head_dim": 128, "num_key_value_heads": 8, "rms_norm_eps": 1e-5, "rope_theta": 5e5,
         "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                          "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
         "sliding_window": None, "qkv_bias": False, "torch_dtype": "bfloat16"}),
    "qwen2.5-0.5b": ({
        "architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0,
        "bos_token_id": 151643, "eos_token_id": 151643, "hidden_act": "silu",
        "hidden_size": 896, "initializer_range": 0.02, "intermediate_size": 4864,
        "max_position_embeddings": 32768, "max_window_layers": 24, "model_type": "qwen2",
        "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
        "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_cache": True,
        "use_mrope": False, "use_sliding_window": False, "vocab_size": 151936},
        {"head_dim": 64, "num_key_value_heads": 2, "rope_theta": 1e6, "rope_scaling": None,
         "sliding_window": None, "qkv_bias": True, "tie_word_embeddings": True}),
    "mistral-7b-v0.1": ({
        "architectures": ["MistralForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "hidden_size": 4096, "initializer_range": 0.02,
        "intermediate_size": 14336, "max_position_embeddings": 32768, "model_type": "mistral",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096,
        "tie_word_embeddings": False, "torch_dtype": "bfloat16", "use_cache": True,
        "vocab_size": 32000},
        {"head_dim": 128, "sliding_window": 4096, "rope_scaling": None, "qkv_bias": False}),
    "gpt2": ({
        "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.1, "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256,
        "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "model_type": "gpt2",
        "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12, "n_positions": 1024,
        "resid_pdrop": 0.1, "summary_activation": None, "summary_type": "cls_index",
        "task_specific_params": {"text-generation": {"do_sample": True, "max_length": 50}},
        "vocab_size": 50257},
        {"n_embd": 768, "n_inner": None, "tie_word_embeddings": True, "eos_token_id": 50256}),
    "bert-base-uncased": ({
        "architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.1,
        "gradient_checkpointing": False, "hidden_act": "gelu", "hidden_dropout_prob": 0.1,
        "hidden_size": 768, "initializer_range": 0.02, "intermediate_size": 3072,
        "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
        "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 0,
        "position_embedding_type": "absolute", "transformers_version": "4.6.0.dev0",
        "type_vocab_size": 2, "use_cache": True, "vocab_size": 30522},
        {"hidden_size": 768, "type_vocab_size": 2, "layer_norm_eps": 1e-12}),
}


@pytest.mark.parametrize("name", sorted(HUB_CONFIGS))
def test_hub_configs(name):
    raw, expected = HUB_CONFIGS[name]
    c = load_config(raw)
    assert {k: getattr(c, k) for k in expected} == expected
    assert "architectures" in c.extra  # kept, not interpreted


@pytest.mark.parametrize("key, value, message", [
    ("hidden_size", "64", "'hidden_size' must be an integer, got '64'"),
    ("num_hidden_layers", True, "'num_hidden_layers' must be an integer"),
    ("num_hidden_layers", 2.0, "'num_hidden_layers' must be an integer"),
    ("num_attention_heads", 0, "'num_attention_heads' must be >= 1"),
    ("rms_norm_eps", "1e-6", "'rms_norm_eps' must be a finite number"),
    ("tie_word_embeddings", "yes", "'tie_word_embeddings' must be true or false"),
    ("hidden_act", 3, "'hidden_act' must be a string"),
    ("vocab_size", None, "'vocab_size' is required .got null."),
    ("num_key_value_heads", 3, r"num_attention_heads \(4\) must be a multiple of "
                               r"num_key_value_heads \(3\)"),
])
def test_wrong_types_name_the_key(key, value, message):
    with pytest.raises(ValueError, match=message):
        load_config({**LLAMA, key: value})


def test_required_keys_and_passthrough(tmp_path):
    with pytest.raises(ValueError, match="'model_type' is required"):
        load_config({k: v for k, v in LLAMA.items() if k != "model_type"})
    with pytest.raises(ValueError, match="'intermediate_size' is required"):
        load_config({k: v for k, v in LLAMA.items() if k != "intermediate_size"})
    c = load_config({**LLAMA, "eos_token_id": [128001, 128009], "bos_token_id": 128000,
                     "torch_dtype": "bfloat16", "architectures": ["LlamaForCausalLM"]})
    assert (c.eos_token_id, c.bos_token_id, c.torch_dtype, c.dtype) == \
        ([128001, 128009], 128000, "bfloat16", None)
    assert c.extra == {"architectures": ["LlamaForCausalLM"]}
    # unknown types load unchecked (load() is where they are refused)
    other = load_config({"model_type": "t5", "d_model": 512})
    assert (other.model_type, other.d_model) == ("t5", 512)


def test_config_from_files(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(TINY_GPT2))
    assert load_config(tmp_path).n_embd == 8
    assert load_config(str(tmp_path / "config.json")).n_embd == 8
    with pytest.raises(FileNotFoundError, match="no such file or directory.*nowhere"):
        load_config(tmp_path / "nowhere")
    (tmp_path / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="has no config.json"):
        load_config(tmp_path)
    # (malformed files: tests/test_malformed_files.py)
    with pytest.raises(TypeError, match="expected a path or a dict"):
        load_config(3)


@pytest.mark.parametrize("model_type", ["mistral", "qwen2"])
def test_a_huge_layer_count_parses_without_a_list_per_layer(model_type):
    """num_hidden_layers comes from the file: the sliding-window rule must not build a list
    with one entry per layer (2**62 layers would exhaust memory); load() refuses such a count
    against the checkpoint's tensors later."""
    import time
    raw = {"model_type": model_type, "hidden_size": 64, "intermediate_size": 128,
           "num_hidden_layers": 2**62, "num_attention_heads": 4, "vocab_size": 10,
           "use_sliding_window": True, "max_window_layers": 0}
    start = time.perf_counter()
    config = load_config(raw)
    assert config.num_hidden_layers == 2**62 and config.sliding_window == 4096
    # qwen2 with full-attention layers before max_window_layers: mixed, refused
    if model_type == "qwen2":
        with pytest.raises(ValueError, match="some layers use a sliding window"):
            load_config({**raw, "max_window_layers": 3})
        assert load_config({**raw, "max_window_layers": 2**62}).sliding_window is None
    assert time.perf_counter() - start < 1.0
