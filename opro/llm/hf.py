"""The transformers backend: `hf:DIR`, any local Hugging Face causal-LM directory (e.g. one `opro rl train`
saved), or a LoRA adapter directory, merged into its base's weights at load. The chat template stored with
the tokenizer renders the messages; nothing is downloaded.

Reproducibility: each request is sampled on its own after `torch.manual_seed(seed)`, so a (request, seed)
pair gives the same text on every run on the same hardware. `parallel` > 1 samples the requests that share
a meta-prompt as one batch, seeded by the first: much faster, but a sample then depends on its batch.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path
from typing import Any

from opro.errors import OproError
from opro.extras import require
from opro.llm.base import Completion, Request


class HFLLM:
    """A local transformers model. `threads`: CPU threads (default: 1 for models under 500M parameters);
    `parallel`: requests sampled together; `sampling`: extra `generate()` arguments (top_p, top_k, ...)."""

    def __init__(self, model: str = "", threads: int | str | None = None, parallel: int = 1,
                 sampling: dict[str, Any] | None = None, model_object: Any = None, tokenizer: Any = None) -> None:
        require("torch", "transformers", extra="rl", feature="the hf: backend")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = Path(model).expanduser()
        adapter = (self.path / "adapter_config.json").is_file()
        if model_object is None and not (self.path / "config.json").is_file() and not adapter:
            raise OproError(f"hf: needs a local Hugging Face model directory (with config.json), got {model!r}")
        self.spec = f"hf:{model}"
        self.parallel, self.sampling = parallel, dict(sampling or {})
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
            source = self.path
            if model_object is None and adapter:
                model_object = merged_model(self.path, dtype)
                if not (self.path / "tokenizer_config.json").is_file():  # an adapter alone: its base's tokenizer
                    source = adapter_base(self.path)
            self.tokenizer = tokenizer or AutoTokenizer.from_pretrained(source)
            self.model = (model_object or AutoModelForCausalLM.from_pretrained(self.path, dtype=dtype)).to(self.device)
        except (OSError, ValueError) as error:
            raise OproError(f"hf: could not load {self.path}: {error}") from error
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        if self.device == "cpu":
            params = sum(p.numel() for p in self.model.parameters())
            threads = None if threads == "auto" else threads  # llama.cpp's start-up probe: not for torch
            self.threads = threads or (1 if params < 500e6 else torch.get_num_threads())
            torch.set_num_threads(self.threads)
        else:
            self.threads = threads
        self._sha256: str | None = None
        self._lock = threading.Lock()

    def generate(self, requests: list[Request]) -> list[Completion]:
        out: list[Completion | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, r in enumerate(requests):
            key = (json.dumps(r.messages, sort_keys=True), r.temperature, r.max_tokens)
            groups.setdefault(key if self.parallel > 1 else (i,), []).append(i)
        for indices in groups.values():
            for start in range(0, len(indices), self.parallel):
                chunk = indices[start:start + self.parallel]
                for i, completion in zip(chunk, self._sample([requests[i] for i in chunk]), strict=True):
                    out[i] = completion
        return out  # type: ignore[return-value]

    def _sample(self, requests: list[Request]) -> list[Completion]:
        """Requests with the same messages and settings, sampled as one batch seeded by the first."""
        import torch

        first = requests[0]
        prompt = self.tokenizer.apply_chat_template(list(first.messages), add_generation_prompt=True,
                                                    tokenize=False)
        inputs = self.tokenizer([prompt] * len(requests), return_tensors="pt", add_special_tokens=False)
        inputs = inputs.to(self.device)
        if first.seed is not None:
            torch.manual_seed(first.seed % 2**63)
        sample = first.temperature > 0
        options = {"do_sample": sample, "max_new_tokens": first.max_tokens,
                   "pad_token_id": self.tokenizer.pad_token_id, **self.sampling}
        if sample:
            options.update(temperature=first.temperature, top_k=options.get("top_k", 0))
        started = time.perf_counter()
        with torch.no_grad():
            output = self.model.generate(**inputs, **options)
        seconds = (time.perf_counter() - started) / len(requests)
        width = inputs["input_ids"].shape[1]
        eos = _stop_ids(self.model, self.tokenizer)
        completions = []
        for row in output[:, width:].tolist():
            stop = next((k for k, t in enumerate(row) if t in eos), None)
            tokens = row if stop is None else row[:stop]
            completions.append(Completion(
                text=self.tokenizer.decode(tokens, skip_special_tokens=True),
                prompt_tokens=int(inputs["attention_mask"][0].sum()),
                completion_tokens=len(tokens) + (stop is not None),
                finish_reason="length" if stop is None else "stop", seconds=seconds,
            ))
        return completions

    def describe(self) -> dict[str, object]:
        with self._lock:
            if self._sha256 is None:
                self._sha256 = weights_sha256(self.path)
        return {"backend": "hf", "model_path": str(self.path), "model_sha256": self._sha256,
                "device": self.device, "threads": self.threads, "parallel": self.parallel, "sampling": self.sampling}

    def close(self) -> None:
        self.model = None


def weights_sha256(path: Path) -> str | None:
    """sha256 over the directory's weight files (safetensors, bin) in name order; None when there are none."""
    files = sorted([*path.glob("*.safetensors"), *path.glob("*.bin")])
    if not files:
        return None
    digest = hashlib.sha256()
    for file in files:
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    return ids | ({tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set())


def adapter_base(adapter: Path) -> Path:
    """The base model directory an adapter directory was trained on (`base_model_name_or_path`)."""
    try:
        base = Path(json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise OproError(f"unreadable adapter_config.json in {adapter}: {error}") from error
    if not (base / "config.json").is_file():
        raise OproError(f"the base model of the adapter {adapter} is not at {base} (no config.json)")
    return base


def merged_model(adapter: Path, dtype: Any) -> Any:
    """The adapter's base with the adapter merged into its weights (a plain transformers model)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(adapter_base(adapter), dtype=dtype)
    return PeftModel.from_pretrained(base, adapter).merge_and_unload()
