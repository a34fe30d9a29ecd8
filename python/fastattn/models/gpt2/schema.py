"""The tensors of a Hugging Face GPT-2 checkpoint: the one list that build_gpt2 takes its
tensors from and that fastattn.testing writes random checkpoints from."""
from __future__ import annotations

from .config import GPT2Config


def gpt2_tensor_shapes(config, *, prefix: str = "",
                       lm_head: bool | None = None) -> dict[str, tuple[int, ...]]:
    """The tensors of a Hugging Face GPT-2 checkpoint, name -> shape (Conv1D weights (in, out)).

    ``config``: a config.json dict or a GPT2Config; ``prefix``: "transformer." as
    GPT2LMHeadModel saves them. ``lm_head.weight`` (never prefixed) is listed when ``lm_head``
    is true; by default when ``tie_word_embeddings`` is false. For writing random checkpoints
    (tests, benchmarks): what ``build_gpt2`` reads."""
    c = GPT2Config.of(config)
    e, vocab, inner = c.n_embd, c.vocab_size, c.inner_size
    shapes: dict[str, tuple[int, ...]] = {prefix + "wte.weight": (vocab, e),
                                          prefix + "wpe.weight": (c.n_positions, e)}
    for i in range(c.n_layer):
        p = f"{prefix}h.{i}."
        for name, fan_in, fan_out in (("attn.c_attn", e, 3 * e), ("attn.c_proj", e, e),
                                      ("mlp.c_fc", e, inner), ("mlp.c_proj", inner, e)):
            shapes[p + name + ".weight"] = (fan_in, fan_out)
            shapes[p + name + ".bias"] = (fan_out,)
        for norm in ("ln_1", "ln_2"):
            shapes[p + norm + ".weight"] = (e,)
            shapes[p + norm + ".bias"] = (e,)
    shapes[prefix + "ln_f.weight"] = (e,)
    shapes[prefix + "ln_f.bias"] = (e,)
    if lm_head is None:
        lm_head = not c.tie_word_embeddings
    if lm_head:
        shapes["lm_head.weight"] = (vocab, e)
    return shapes
