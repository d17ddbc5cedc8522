"""`opro rl convert`: a GGUF (the default SmolLM2-135M-Instruct, or any path) -> a normal HF model directory.

transformers loads a GGUF with `gguf_file=` and dequantizes it to float32 (the `gguf` package reads it), but
then refuses `save_pretrained` ("quantized with gguf and is not serializable"): the loaded model carries the
GGUF quantizer. The way around it is to build a plain model from the same config with the quantization
settings removed, load the dequantized weights into it, and save that.
"""

from __future__ import annotations

import json
from pathlib import Path

from opro.errors import OproError
from opro.extras import require
from opro.llm.models import resolve_gguf


def convert_gguf(model: str, out: Path) -> Path:
    """Write `model` (`smollm2`, `llamacpp:...` or a .gguf path) to `out` as safetensors, config and tokenizer."""
    require("torch", "transformers", "gguf", extra="rl", feature="opro rl convert")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    path = resolve_gguf(model.removeprefix("llamacpp:"))
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    except (OSError, ValueError, KeyError) as error:
        raise OproError(f"transformers could not load {path}: {error}") from error
    config = loaded.config
    for name in ("quantization_config", "_pre_quantization_dtype"):
        if hasattr(config, name):
            delattr(config, name)
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:  # a tied lm_head is not stored separately
        raise OproError(f"weights of {path.name} do not fit its config: missing {missing[:3]}, extra {unexpected[:3]}")
    if config.tie_word_embeddings:
        plain.tie_weights()
    plain.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "opro_source.json").write_text(json.dumps({"gguf": str(path)}, indent=1))
    return out
