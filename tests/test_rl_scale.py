"""`opro rl train` at scale, on CPU with the tiny model of tests/tiny_lm.py: gradient accumulation and a
global batch (LoRA and full), bf16's automatic setting, a SIGKILLed training resumed from its checkpoint,
two processes through `accelerate launch` that see every episode exactly once, TRL's vLLM settings, the
held-out evaluation log, a model without a chat template, and the online hook's LoRA path."""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tiers import require_extra

require_extra("trl")
require_extra("peft")

from opro.cli import main  # noqa: E402
from opro.errors import OproError  # noqa: E402
from opro.rl import train as train_module  # noqa: E402
from opro.rl.train import (  # noqa: E402
    GRPOTrainConfig,
    SFTTrainConfig,
    accumulation,
    grpo_args,
    train,
    use_bf16,
)

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, tiny_model, tiny_linreg):
    return tmp_path_factory.mktemp("scale"), tiny_linreg, tiny_model


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _spy(monkeypatch):
    """Every trainer that opro.rl.train builds, in order."""
    trainers, build = [], train_module.build_trainer

    def spy(*args, **kwargs):
        trainers.append(build(*args, **kwargs))
        return trainers[-1]

    monkeypatch.setattr(train_module, "build_trainer", spy)
    return trainers


def test_global_batch_sets_the_accumulation():
    assert accumulation(SFTTrainConfig(batch_size=2, grad_accum=3), processes=4) == 3
    assert accumulation(SFTTrainConfig(batch_size=2, global_batch_size=16), processes=4) == 2
    assert accumulation(SFTTrainConfig(batch_size=2, global_batch_size=16, grad_accum=2), processes=4) == 2
    for wrong in (SFTTrainConfig(batch_size=2, global_batch_size=10), SFTTrainConfig(batch_size=2, global_batch_size=16,
                                                                                      grad_accum=3)):
        with pytest.raises(OproError, match="--global-batch-size"):
            accumulation(wrong, processes=4)


def test_bf16_is_automatic_on_cuda_and_off_on_cpu(monkeypatch):
    import torch

    assert use_bf16(SFTTrainConfig()) is (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert use_bf16(SFTTrainConfig()) and not use_bf16(SFTTrainConfig(bf16=False))
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a V100
    assert not use_bf16(SFTTrainConfig()) and use_bf16(SFTTrainConfig(bf16=True))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert not use_bf16(SFTTrainConfig())


def test_vllm_settings_reach_trls_config(tmp_path):
    common = dict(output_dir=str(tmp_path), use_cpu=True, report_to=[], per_device_train_batch_size=4)
    plain = grpo_args(GRPOTrainConfig(), common)
    assert not plain.use_vllm  # the default: transformers' generate
    colocate = grpo_args(GRPOTrainConfig(vllm="colocate", vllm_gpu_memory_utilization=0.45), common)
    assert (colocate.use_vllm, colocate.vllm_mode, colocate.vllm_gpu_memory_utilization) == (True, "colocate", 0.45)
    server = grpo_args(GRPOTrainConfig(vllm="server", vllm_server_url="http://gpu7:8001"), common)
    assert (server.use_vllm, server.vllm_mode, server.vllm_server_base_url) == (True, "server", "http://gpu7:8001")


def test_missing_vllm_or_tensorboard_names_the_extra(tiny, capsys):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    _, _, base = tiny
    with pytest.raises(SystemExit) as stop:
        main(["rl", "train", "--model", f"hf:{base}", "--algo", "grpo", "--vllm", "colocate"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "opro[vllm]" in err and "\n" not in err
    with pytest.raises(SystemExit) as stop:
        main(["rl", "train", "--model", f"hf:{base}", "--algo", "sft", "--vllm", "server"])
    assert stop.value.code == 2 and "not a sft setting" in capsys.readouterr().err
    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(SystemExit) as stop:
            main(["rl", "train", "--model", f"hf:{base}", "--algo", "sft", "--report-to", "tensorboard"])
        assert stop.value.code == 2 and "opro[tensorboard]" in capsys.readouterr().err


def test_a_model_without_a_chat_template_is_one_error(tiny, tmp_path, capsys):
    import shutil

    _, _, base = tiny
    plain = tmp_path / "plain"
    shutil.copytree(base, plain)
    (plain / "chat_template.jinja").unlink(missing_ok=True)
    settings = json.loads((plain / "tokenizer_config.json").read_text())
    settings.pop("chat_template", None)
    (plain / "tokenizer_config.json").write_text(json.dumps(settings))
    with pytest.raises(SystemExit) as stop:
        main(["rl", "train", "--model", f"hf:{plain}", "--algo", "sft", "--steps", "1", "--out", str(tmp_path / "o")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "no chat template" in err and "\n" not in err


def test_resume_needs_a_checkpoint(tiny, tmp_path, capsys):
    _, _, base = tiny
    for spec in ("last", str(tmp_path)):
        with pytest.raises(SystemExit) as stop:
            main(["rl", "train", "--model", f"hf:{base}", "--algo", "sft", "--out", str(tmp_path / "o"),
                  "--resume-from-checkpoint", spec])
        assert stop.value.code == 2 and "checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_lora_and_full_training_with_accumulation(tiny, monkeypatch):
    """LoRA SFT with --grad-accum 2 and full SFT with a global batch of 4 (2 x accumulation 2) each see 4
    sequences a step (one epoch of steps x 4 episodes) and change their weights; GRPO with accumulation
    scores every episode once (num_generations completions each) and logs the held-out figures."""
    root, task, base = tiny
    trainers = _spy(monkeypatch)
    common = dict(model=str(base), task=str(task), steps=2, batch_size=2, learning_rate=1e-2, vary_lines=False)
    lora = train("sft", SFTTrainConfig(**common, output_dir=str(root / "lora"), grad_accum=2, lora_rank=4))
    full = train("sft", SFTTrainConfig(**common, output_dir=str(root / "full"), global_batch_size=4))
    assert [t.args.gradient_accumulation_steps for t in trainers] == [2, 2]
    for out in (lora, full):
        record = json.loads((out / "rl_train.json").read_text())
        assert record["global_batch_size"] == 4 and record["global_step"] == 2 and not record["bf16"]
        assert record["log"][-1]["epoch"] == 1.0  # 2 steps x 4 sequences: the 8 episodes once
    adapter = _tensors(lora / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in adapter.items())  # peft starts B at zero
    before, after = _tensors(base / "model.safetensors"), _tensors(full / "model.safetensors")
    assert any(not (before[k] == after[k]).all() for k in before)

    grpo = train("grpo", GRPOTrainConfig(**{**common, "batch_size": 4}, output_dir=str(root / "grpo"), grad_accum=2,
                                         num_generations=4, max_completion_length=8, eval_every=1, eval_prompts=2,
                                         eval_samples=2, lora_rank=4))
    record = json.loads((grpo / "rl_train.json").read_text())
    assert trainers[-1].args.gradient_accumulation_steps == 2 and record["global_batch_size"] == 8
    assert record["episodes_seen"] == [{str(e): 4 for e in range(4)}]  # 2 steps x 8 completions, 4 an episode
    assert [e["step"] for e in record["held_out"]] == [0, 1, 2]
    figures = record["held_out"][-1]["tiny-linreg"]
    assert figures["proposals"] == 4 and {"valid_rate", "improvement_rate", "mean_reward"} <= set(figures)
    assert any("heldout/tiny-linreg/mean_reward" in e for e in record["log"])  # TensorBoard gets the log too
    assert [e["step"] for e in record["log"] if "loss" in e] == [1, 2]  # and the steps' own logs stay


KILLER = """
import os, signal, sys
from transformers import TrainerCallback
import opro.rl.train as train

class Kill(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # no clean-up: as a killed job

build = train.build_trainer

def killed(*args, **kwargs):
    trainer = build(*args, **kwargs)
    trainer.add_callback(Kill())
    return trainer

train.build_trainer = killed
from opro.cli import main
main(sys.argv[1:])
"""


@pytest.mark.slow
def test_a_killed_training_resumes_from_its_checkpoint(tiny, tmp_path, monkeypatch, capsys):
    """SIGKILL right after checkpoint-2 of 4; `--resume-from-checkpoint last` continues at step 3 with the
    saved optimizer state (Adam's step count 4 at the end) and ends on the same weights as an unbroken run."""
    _, task, base = tiny
    args = ["rl", "train", "--model", f"hf:{base}", "--algo", "sft", "--task", str(task), "--steps", "4",
            "--batch-size", "2", "--lr", "1e-2", "--save-steps", "1", "--seed", "3"]
    out = tmp_path / "killed"
    (tmp_path / "killer.py").write_text(KILLER)
    done = subprocess.run([sys.executable, str(tmp_path / "killer.py"), *args, "--out", str(out)], env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr[-2000:]
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert (out / "checkpoint-2" / "optimizer.pt").is_file() and not (out / "rl_train.json").exists()

    trainers = _spy(monkeypatch)
    for spec in ("last", None):
        target = out if spec else tmp_path / "unbroken"
        with pytest.raises(SystemExit) as stop:
            main([*args, "--out", str(target), *(["--resume-from-checkpoint", spec] if spec else [])])
        assert stop.value.code == 0
    record = json.loads((out / "rl_train.json").read_text())
    assert record["resumed_from"] == str(out / "checkpoint-2") and record["global_step"] == 4
    assert [e["step"] for e in record["log"] if "loss" in e] == [1, 2, 3, 4]  # 1-2 restored, 3-4 trained
    optimizer = trainers[0].optimizer
    assert {int(s["step"]) for s in optimizer.state_dict()["state"].values()} == {4}  # 2 loaded + 2 new
    resumed, unbroken = _tensors(out / "model.safetensors"), _tensors(tmp_path / "unbroken" / "model.safetensors")
    assert all((resumed[k] == unbroken[k]).all() for k in resumed)
    middle = _tensors(out / "checkpoint-2" / "model.safetensors")
    assert any(not (middle[k] == resumed[k]).all() for k in middle)


@pytest.mark.slow
def test_two_processes_through_accelerate_see_every_episode_once(tiny, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2 -m opro.cli rl train` on CPU: torchrun starts two
    processes (gloo; accelerate's --cpu alone runs one); each scores its share of every global batch, and the
    held-out evaluation keeps the processes' collectives in step."""
    _, task, base = tiny
    out = tmp_path / "two"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port",
               str(29500 + os.getpid() % 1000), "-m", "opro.cli", "rl", "train", "--model", f"hf:{base}", "--algo",
               "grpo", "--task", str(task), "--steps", "2", "--batch-size", "4", "--num-generations", "4",
               "--max-completion-length", "8", "--eval-every", "1", "--eval-prompts", "1", "--eval-samples", "2",
               "--out", str(out)]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("saved grpo model") == 1  # the main process reports
    record = json.loads((out / "rl_train.json").read_text())
    assert record["processes"] == 2 and record["global_batch_size"] == 8
    first, second = (collections.Counter(counts) for counts in record["episodes_seen"])
    assert first and second  # both processes generated
    # 2 steps x 8 completions = 4 episodes x 4 generations: every episode once, its group complete
    assert first + second == {str(e): 4 for e in range(4)}
    saved, original = _tensors(out / "model.safetensors"), _tensors(base / "model.safetensors")
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in original.items()}  # the whole model
    assert [e["step"] for e in record["held_out"]] == [0, 1, 2]  # every process evaluates, the main one logs
    assert [e["step"] for e in record["log"] if "loss" in e] == [1, 2]


@pytest.mark.slow
def test_online_hook_trains_a_lora_adapter_in_memory(warm, tmp_path, monkeypatch):
    """--rl-every with LoRA: no reference copy is loaded (the anchor is TRL's "ref" adapter, zeroed: the base),
    the backend samples the next step from the very model object just trained, and rl_model/ is an adapter."""
    from opro.config import build_config
    from opro.llm import build_llm
    from opro.rl.online import OnlineRLConfig, run_online

    _, task, _, sft = warm
    trainers = _spy(monkeypatch)
    built, same = [], []

    def keep(*args, **kwargs):
        built.append(build_llm(*args, **kwargs))
        return built[-1]

    def step(row):  # after each step, before the hook's update: the model the backend samples with
        same.append(built[0].model is (trainers[-1].accelerator.unwrap_model(trainers[-1].model) if trainers
                                       else built[0].model))

    monkeypatch.setattr("opro.llm.build_llm", keep)
    config = build_config(str(task), {"optimizer.spec": f"hf:{sft}", "loop.steps": 2, "loop.candidates_per_step": 4,
                                      "results_root": str(tmp_path), "loop.stop_at_optimum": False})
    run, _ = run_online(config, OnlineRLConfig(every=1, train_steps=1, lora_rank=4), on_step=step)
    *updates, final = [json.loads(line) for line in (run.path / "rl_updates.jsonl").read_text().splitlines()]
    trained = [u for u in updates if u["rows"]]
    assert trained and all(u["reference"] == "base in memory (LoRA)" and u["seconds"] > u["build_seconds"] > 0
                       for u in trained)
    assert len(trainers) == len(trained) and all(t.ref_model is None for t in trainers)
    model = built[0].model if built[0].model is not None else trainers[-1].model
    assert "ref" not in model.peft_config  # dropped after each update
    assert len(built) == 1 and same and all(same)  # proposals come from the trained object, no reload
    assert final["updates"] == len(trained)
    settings = json.loads((run.path / "rl_model" / "adapter_config.json").read_text())
    assert settings["r"] == 4 and Path(settings["base_model_name_or_path"]) == sft
    assert not (run.path / "rl_model" / "model.safetensors").exists()
    print("online LoRA update seconds:", [round(u["seconds"], 2) for u in trained])


def test_the_online_lora_anchor_is_the_base(tiny):
    """TRL's "ref" adapter starts as a copy of the trained one; zeroed B makes it the base model."""
    import torch
    from transformers import AutoModelForCausalLM

    from opro.rl.lora import new_adapter
    from opro.rl.online import _anchor_to_base

    _, _, base = tiny
    model = new_adapter(AutoModelForCausalLM.from_pretrained(base), 2)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            parameter.data.fill_(0.5)  # a trained adapter
    model.add_adapter("ref", model.peft_config["default"])
    _anchor_to_base(model)
    weights = dict(model.named_parameters())
    assert all((weights[n] == 0).all() for n in weights if ".ref." in n and "lora_B" in n)
    assert all((weights[n] == 0.5).all() for n in weights if ".default." in n and "lora_B" in n)
    ids = torch.tensor([[1, 5, 9]])
    with torch.no_grad():
        model.set_adapter("ref")
        anchored = model(ids).logits
        with model.disable_adapter():
            plain = model(ids).logits
    assert torch.allclose(anchored, plain)


@pytest.mark.parametrize(("name", "kind", "stage"), [("multi_gpu", "MULTI_GPU", None),
                                                     ("deepspeed_zero2", "DEEPSPEED", 2),
                                                     ("deepspeed_zero3", "DEEPSPEED", 3)])
def test_the_shipped_accelerate_configs(name, kind, stage):
    import yaml

    path = ROOT / "examples" / "accelerate" / f"{name}.yaml"
    config = yaml.safe_load(path.read_text())
    assert config["distributed_type"] == kind and not config["use_cpu"] and config["num_machines"] == 1
    assert (config.get("deepspeed_config") or {}).get("zero_stage") == stage
    assert "-m opro.cli rl train" in path.read_text()  # the documented launch line


@pytest.mark.parametrize("kind", ["qwen2"])
def test_another_architecture_trains_with_its_tokenizers_template(tiny, tmp_path, kind):
    """Nothing is Llama-specific in training: a tiny Qwen2 (Qwen2.5's architecture) on the tiny tokenizer
    trains a LoRA adapter on every linear layer, prompted through the tokenizer's chat template."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    root, task, base = tiny
    tokenizer = AutoTokenizer.from_pretrained(base)
    config = AutoConfig.for_model(kind, vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                  tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                                  pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id)
    model_dir = tmp_path / kind
    AutoModelForCausalLM.from_config(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    out = train("sft", SFTTrainConfig(model=str(model_dir), output_dir=str(tmp_path / "out"), task=str(task),
                                      steps=1, batch_size=2, learning_rate=1e-2, vary_lines=False, lora_rank=2))
    adapter = _tensors(out / "adapter_model.safetensors")
    assert {k.split(".")[-3] for k in adapter} >= {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj"}
    assert json.loads((out / "rl_train.json").read_text())["global_step"] == 1


def test_several_processes_need_one_out(tiny, monkeypatch):
    """Each process would name its own timestamped default folder."""
    _, _, base = tiny
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(OproError, match="need one --out"):
        train("sft", SFTTrainConfig(model=str(base)))
