"""LoRA in `opro rl train` (peft, on the tiny local model of tests/tiny_lm.py), the GGUF adapter export and
its inverse, and the training episodes' seeds, which no evaluation shares."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.tiers import require_extra

require_extra("peft")
require_extra("gguf")
from opro.cli import main  # noqa: E402
from opro.config import build_config  # noqa: E402
from opro.rl.episodes import HELD_OUT_SEEDS, TRAINING_SEEDS, fresh_episodes, neighbor_step, problem_from  # noqa: E402
from opro.rl.export import sft_rows  # noqa: E402
from opro.rl.lora import GGUF_NAMES, export_gguf, import_gguf  # noqa: E402
from opro.rl.train import DPOTrainConfig, GRPOTrainConfig, SFTTrainConfig, episodes_for, train  # noqa: E402


def _tensors(path):
    from safetensors.numpy import load_file

    return load_file(str(path))


@pytest.fixture(scope="module")
def lora_sft(tmp_path_factory, tiny_model, tiny_linreg):
    root, task, base = tmp_path_factory.mktemp("lora"), tiny_linreg, tiny_model
    out = train("sft", SFTTrainConfig(model=f"hf:{base}", output_dir=str(root / "sft"), task=str(task), steps=30,
                                      batch_size=4, learning_rate=3e-2, vary_lines=False, lora_rank=4))
    return root, task, base, out


def test_lora_sft_trains_an_adapter_and_leaves_the_base_alone(lora_sft):
    root, task, base, sft = lora_sft
    before = _tensors(base / "model.safetensors")
    assert not (sft / "model.safetensors").exists()
    settings = json.loads((sft / "adapter_config.json").read_text())
    assert settings["r"] == 4 and settings["lora_alpha"] == 8 and settings["base_model_name_or_path"] == str(base)
    adapter = _tensors(sft / "adapter_model.safetensors")
    assert any("lora_B" in k and np.abs(v).max() > 0 for k, v in adapter.items())  # peft starts B at zero
    assert {k.split(".")[-3] for k in adapter} >= {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                    "down_proj"}
    after = _tensors(base / "model.safetensors")
    assert all((before[k] == after[k]).all() for k in before)
    log = json.loads((sft / "rl_train.json").read_text())["log"]
    losses = [e["loss"] for e in log if "loss" in e]
    assert losses[-1] < losses[0]


@pytest.mark.slow
def test_grpo_and_dpo_train_lora_adapters(warm, lora_sft):
    """GRPO with a new adapter on a model that writes the answer format (so groups differ in reward), GRPO
    continuing an adapter (it loads trainable and saves the same tensors), and DPO on chosen modules."""
    _, task, _, full_sft = warm
    root, _, base, sft = lora_sft
    grpo = train("grpo", GRPOTrainConfig(model=str(full_sft), output_dir=str(root / "grpo"), task=str(task),
                                         steps=3, batch_size=4, num_generations=4, max_completion_length=16,
                                         learning_rate=5e-2, vary_lines=False, lora_rank=4))
    log = json.loads((grpo / "rl_train.json").read_text())["log"]
    assert any(e.get("reward_std", 0) > 0 for e in log)  # groups with a reward signal
    adapter = _tensors(grpo / "adapter_model.safetensors")
    assert any("lora_B" in k and np.abs(v).max() > 0 for k, v in adapter.items())  # B starts at zero
    further = train("grpo", GRPOTrainConfig(model=str(sft), output_dir=str(root / "grpo-further"), task=str(task),
                                            steps=1, batch_size=4, num_generations=4, max_completion_length=8,
                                            vary_lines=False))
    assert set(_tensors(further / "adapter_model.safetensors")) == set(_tensors(sft / "adapter_model.safetensors"))
    dpo = train("dpo", DPOTrainConfig(model=str(base), output_dir=str(root / "dpo"), task="tsp", sizes=(5, 5),
                                      steps=2, batch_size=2, learning_rate=1e-2, lora_rank=2,
                                      lora_targets="q_proj,v_proj"))
    assert {k.split(".")[-3] for k in _tensors(dpo / "adapter_model.safetensors")} == {"q_proj", "v_proj"}


def test_export_gguf_round_trips_and_merges_like_peft(lora_sft, tmp_path):
    """export_gguf writes llama.cpp's layout (query/key rows permuted); import_gguf undoes it exactly."""
    import gguf

    root, task, base, sft = lora_sft
    written = export_gguf(sft, tmp_path / "a.gguf")
    reader = gguf.GGUFReader(str(tmp_path / "a.gguf"))
    assert bytes(reader.fields["general.type"].parts[-1]).decode() == "adapter"
    names = {t.name for t in reader.tensors}
    assert "blk.0.attn_q.weight.lora_a" in names and "blk.1.ffn_down.weight.lora_b" in names
    assert written["tensors"] == len(names) == 2 * 7 * 2 and written["rank"] == 4
    back = import_gguf(tmp_path / "a.gguf", base, tmp_path / "back")
    original, restored = _tensors(sft / "adapter_model.safetensors"), _tensors(back / "adapter_model.safetensors")
    assert set(original) == set(restored)
    assert all(np.array_equal(original[k], restored[k]) for k in original)
    settings = json.loads((back / "adapter_config.json").read_text())
    assert sorted(settings["target_modules"]) == sorted(m.split(".")[-1] for m in GGUF_NAMES)
    assert (settings["r"], settings["lora_alpha"]) == (4, 8)
    permuted = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight.lora_b")
    q = original["base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight"]
    assert not np.array_equal(np.array(permuted.data).reshape(q.shape), q)  # rows reordered for llama.cpp


def test_export_gguf_refuses_a_plain_model_in_one_line(tiny_model, tmp_path, capsys):
    base = tiny_model
    with pytest.raises(SystemExit) as stop:
        main(["rl", "export-gguf", str(base), "--out", str(tmp_path / "x.gguf")])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "not a LoRA adapter" in err and "\n" not in err
    assert not (tmp_path / "x.gguf").exists()


def test_training_episodes_never_share_an_instance_with_an_evaluation():
    """Training seeds lie in [2**30, 2**31), evaluation seeds below; linreg training lines are never the
    preset's (15, 14), the line every `opro run --task linreg` and the benchmark evaluate."""
    config = SFTTrainConfig(task="tsp,linreg", steps=20, batch_size=2, sizes=(6, 10), history="run")
    episodes = episodes_for(config, 40)
    seeds = [json.loads(e.settings)["seed"] for e in episodes]
    assert len(episodes) == 40 and all(TRAINING_SEEDS[0] <= s < TRAINING_SEEDS[1] for s in seeds)
    lines = {(json.loads(e.settings)["w_true"], json.loads(e.settings)["b_true"]) for e in episodes
             if e.problem == "linreg"}
    preset = build_config("linreg").problem_settings
    assert len(lines) > 5 and (preset["w_true"], preset["b_true"]) not in lines
    held_out = fresh_episodes("tsp", 10, seed=1000)
    assert all(json.loads(e.settings)["seed"] < HELD_OUT_SEEDS[1] <= TRAINING_SEEDS[0] for e in held_out)
    for preset_name in ("tsp", "linreg", "tsp-paper", "linreg-paper"):
        assert build_config(preset_name).seed < TRAINING_SEEDS[0]
    from benchmarks import default_optimizer

    assert default_optimizer.MODELS["tuned"] == build_config("tsp").optimizer.spec


def test_neighbor_targets_are_one_steepest_step_from_the_best_shown():
    episodes = fresh_episodes("tsp", 6, seed=3, sizes=(7, 7), history="run", seeds=TRAINING_SEEDS)
    rows = sft_rows(episodes, target="neighbor")
    assert rows
    for row in rows:
        problem = problem_from(row["problem"], row["settings"])
        answer = problem.parse(row["completion"][0]["content"])
        score = problem.score([answer])[0]
        assert score < row["best_shown"] and problem.render(answer) not in row["seen"]
    linreg = fresh_episodes("linreg", 4, seed=3, history="run", seeds=TRAINING_SEEDS)
    for episode in linreg:
        problem = problem_from(episode.problem, episode.settings)
        step = neighbor_step(problem, episode)
        if step is not None:
            best = min((problem.decode(s) for s in episode.seen), key=lambda s: problem.score([s])[0])
            assert abs(step[0] - best[0]) <= 3 and abs(step[1] - best[1]) <= 6
