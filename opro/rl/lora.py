"""LoRA adapters: made and loaded with peft, exported as GGUF adapters that llama.cpp applies to a base GGUF.

Why an adapter GGUF rather than a merged GGUF: the base model is Q4_1 (4 bits a weight, a quantization
step of ~1/15 of each block's range), and a fine-tune's weight change is far below that step, so merging
it into the weights and quantizing again would round most of it away. llama.cpp instead keeps the base as
it is and adds `scale * B (A x)` in float32 at each adapted layer, so the tuned model runs exactly as
trained, without torch or transformers, and the adapter is a few MB (rank 8 on every linear layer of
SmolLM2-135M: 9.8 MB in float32).

The GGUF adapter layout is llama.cpp's: `general.type = adapter`, `adapter.type = lora`,
`adapter.lora.alpha`, and per adapted weight `blk.N.<name>.weight.lora_a` (rank x in) and `.lora_b`
(out x rank). llama.cpp stores the query and key projections with their rows permuted for its rotary
layout (what its HF-to-GGUF conversion does to q_proj/k_proj), so their `lora_b` rows are permuted alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from opro.errors import OproError
from opro.llm.hf import adapter_base

#: HF Llama module -> llama.cpp tensor name inside `blk.N.`.
GGUF_NAMES = {
    "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def new_adapter(model: Any, rank: int, alpha: float | None = None, targets: str = "all-linear") -> Any:
    """`model` with a new trainable LoRA adapter (peft) on `targets`; alpha defaults to 2 x rank."""
    from peft import LoraConfig, get_peft_model

    modules: Any = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    config = LoraConfig(r=rank, lora_alpha=alpha or 2 * rank, lora_dropout=0.0, target_modules=modules,
                        task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def export_gguf(adapter: Path, out: Path, dtype: str = "f32") -> dict[str, Any]:
    """Write the LoRA adapter directory `adapter` as a llama.cpp GGUF adapter; returns what was written."""
    import gguf
    from safetensors.numpy import load_file

    if not (adapter / "adapter_config.json").is_file():
        raise OproError(f"{adapter} is not a LoRA adapter directory (no adapter_config.json); train with "
                        "--lora-rank to get one")
    if dtype not in ("f32", "f16"):
        raise OproError(f"--dtype must be f32 or f16, got {dtype!r}")
    settings = json.loads((adapter / "adapter_config.json").read_text())
    base = adapter_base(adapter)
    model = json.loads((base / "config.json").read_text())
    if model.get("model_type") != "llama":
        raise OproError(f"export-gguf supports Llama-architecture models (SmolLM2, Llama), not "
                        f"{model.get('model_type')}")
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    heads, kv_heads = model["num_attention_heads"], model.get("num_key_value_heads", model["num_attention_heads"])
    tensors: dict[str, np.ndarray] = {}
    for key, value in weights.items():
        # base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight
        prefix, _, rest = key.partition(".layers.")
        layer, _, rest = rest.partition(".")
        module, _, kind = rest.rpartition(".lora_")
        if not prefix or module not in GGUF_NAMES or kind not in ("A.weight", "B.weight"):
            raise OproError(f"export-gguf cannot place the adapter weight {key}")
        array = value.astype(np.float32)
        if kind == "B.weight" and module in ("self_attn.q_proj", "self_attn.k_proj"):
            array = _rotary_permute(array, heads if module == "self_attn.q_proj" else kv_heads)
        name = f"blk.{int(layer)}.{GGUF_NAMES[module]}.weight.lora_{kind[0].lower()}"
        tensors[name] = array.astype(np.float16 if dtype == "f16" else np.float32)
    rank = int(settings["r"])
    alpha = float(settings.get("lora_alpha") or rank)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), arch="llama")
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for name in sorted(tensors, key=_layer_order):
        writer.add_tensor(name, tensors[name])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out)
    return {"tensors": len(tensors), "rank": rank, "alpha": alpha, "dtype": dtype, "bytes": out.stat().st_size}


def import_gguf(adapter_gguf: Path, base: Path, out: Path) -> Path:
    """A GGUF LoRA adapter as a peft adapter directory on the HF model `base` (the inverse of `export_gguf`),
    e.g. to run the shipped adapter through `hf:` with merged weights."""
    import gguf
    from peft import LoraConfig
    from safetensors.numpy import save_file

    reader = gguf.GGUFReader(str(adapter_gguf))
    alpha_field = reader.fields.get(gguf.Keys.Adapter.LORA_ALPHA)
    if alpha_field is None:
        raise OproError(f"{adapter_gguf} is not a GGUF LoRA adapter (no {gguf.Keys.Adapter.LORA_ALPHA})")
    alpha = float(alpha_field.parts[alpha_field.data[0]][0])
    model = json.loads((base / "config.json").read_text())
    heads, kv_heads = model["num_attention_heads"], model.get("num_key_value_heads", model["num_attention_heads"])
    modules = {v: k for k, v in GGUF_NAMES.items()}
    weights, rank = {}, 0
    for tensor in reader.tensors:
        _, layer, name, _, kind = tensor.name.split(".")  # blk.3.attn_q.weight.lora_a
        array = np.array(tensor.data, dtype=np.float32).reshape([int(d) for d in reversed(tensor.shape)])
        module = modules[name]
        if kind == "lora_b" and module in ("self_attn.q_proj", "self_attn.k_proj"):
            array = _rotary_unpermute(array, heads if module == "self_attn.q_proj" else kv_heads)
        rank = array.shape[0] if kind == "lora_a" else rank
        weights[f"base_model.model.model.layers.{layer}.{module}.lora_{kind[-1].upper()}.weight"] = array
    out.mkdir(parents=True, exist_ok=True)
    targets = sorted({key.split(".")[-3] for key in weights})  # q_proj, ..., down_proj
    LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, task_type="CAUSAL_LM",
               base_model_name_or_path=str(base)).save_pretrained(str(out))
    save_file(weights, str(out / "adapter_model.safetensors"))
    return out


def _rotary_permute(rows: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order of a query/key projection: each head's halves interleaved (its HF conversion)."""
    return rows.reshape(heads, 2, rows.shape[0] // heads // 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _rotary_unpermute(rows: np.ndarray, heads: int) -> np.ndarray:
    """The inverse of `_rotary_permute`."""
    return rows.reshape(heads, rows.shape[0] // heads // 2, 2, *rows.shape[1:]).swapaxes(1, 2).reshape(rows.shape)


def _layer_order(name: str) -> tuple[int, str]:
    return int(name.split(".")[1]), name
