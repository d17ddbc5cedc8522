"""TRL training of a tiny model built here (tests/tiny_lm.py: local tokenizer, random Llama; no hub):
an SFT warm start (`warm`, a session fixture in conftest.py), then GRPO on the OPRO reward and DPO, on CPU.
Each must change the weights."""

from __future__ import annotations

import json

import pytest

from tests.tiers import require_extra

require_extra("trl")
from opro.analysis import find_runs  # noqa: E402
from opro.cli import main  # noqa: E402
from opro.llm import Request, build_llm  # noqa: E402
from opro.rl.episodes import fresh_episodes  # noqa: E402
from opro.rl.train import DPOTrainConfig, GRPOTrainConfig, build_trainer, train  # noqa: E402
from tests.artifacts import assert_plot  # noqa: E402


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _changed(a, b) -> bool:
    return any(not (a[k] == b[k]).all() for k in a)


def test_sft_grpo_dpo_change_the_weights(warm):
    root, task, base, sft = warm
    assert _changed(_weights(base), _weights(sft))
    log = json.loads((sft / "rl_train.json").read_text())["log"]
    losses = [e["loss"] for e in log if "loss" in e]
    assert losses[-1] < losses[0] / 2

    grpo = train("grpo", GRPOTrainConfig(model=str(sft), output_dir=str(root / "grpo"), task=str(task), steps=3,
                                         batch_size=4, num_generations=4, max_completion_length=16,
                                         learning_rate=1e-3, vary_lines=False))
    record = json.loads((grpo / "rl_train.json").read_text())
    assert record["config"]["beta"] > 0 and record["device"] == "cpu"
    assert any(e.get("reward_std", 0) > 0 for e in record["log"])  # groups with a reward signal
    assert _changed(_weights(sft), _weights(grpo))

    dpo = train("dpo", DPOTrainConfig(model=str(base), output_dir=str(root / "dpo"), task="tsp", sizes=(5, 6),
                                      steps=2, batch_size=2, learning_rate=1e-3))
    assert _changed(_weights(base), _weights(dpo))
    from transformers import AutoTokenizer

    assert json.loads((dpo / "config.json").read_text())["model_type"] == "llama"  # saved beside its tokenizer
    assert AutoTokenizer.from_pretrained(dpo).chat_template == AutoTokenizer.from_pretrained(base).chat_template


def test_hf_backend_samples_with_per_request_seeds(warm, tmp_path, capsys):
    root, task, _, sft = warm
    llm = build_llm(f"hf:{sft}")
    episode = fresh_episodes(str(task), 1, seed=5)[0]
    requests = [Request(tuple(episode.prompt), 1.0, 12, seed) for seed in (1, 2, 1)]
    first, second, again = llm.generate(requests)
    assert first.text == again.text and first.prompt_tokens > 0
    assert first.completion_tokens <= 12 and first.finish_reason in ("stop", "length")
    assert llm.describe()["model_sha256"]
    # the tuned model as the optimizer of an OPRO run
    with pytest.raises(SystemExit) as stop:
        main(["run", "--task", str(task), "--optimizer", f"hf:{sft}", "--results", str(tmp_path), "--quiet",
              "--no-cache"])
    assert stop.value.code == 0
    run_dir = next(tmp_path.glob("*/*"))
    assert json.loads((run_dir / "config.json").read_text())["optimizer"]["backend"] == "hf"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["steps_run"] == 1 and summary["best_score"] is not None


def test_bad_model_directory_is_a_user_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["rl", "train", "--model", f"hf:{tmp_path}", "--algo", "grpo"])
    assert stop.value.code == 2
    assert "not a Hugging Face model directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        main(["run", "--optimizer", f"hf:{tmp_path}", "--results", str(tmp_path)])
    assert stop.value.code == 2


@pytest.mark.parametrize("algo", ["grpo", pytest.param("dpo", marks=pytest.mark.slow)])
def test_online_hook_updates_the_optimizer_between_steps(warm, tmp_path, monkeypatch, algo):
    root, task, _, sft = warm
    references = []

    def spy(*args, **kwargs):  # the reference model of each update's trainer
        trainer = build_trainer(*args, **kwargs)
        references.append(trainer.accelerator.unwrap_model(trainer.ref_model))
        return trainer

    monkeypatch.setattr("opro.rl.train.build_trainer", spy)
    with pytest.raises(SystemExit) as stop:
        main(["run", "--task", str(task), "--optimizer", f"hf:{sft}", "--steps", "2", "--candidates", "4",
              "--rl-every", "1", "--rl-algo", algo, "--results", str(tmp_path), "--quiet",
              "--set", "loop.stop_at_optimum=false"])
    assert stop.value.code == 0
    run_dir = next(tmp_path.glob("*/*"))
    *updates, final = [json.loads(line) for line in (run_dir / "rl_updates.jsonl").read_text().splitlines()]
    assert [u["after_step"] for u in updates] == [1, 2]
    assert all(u["algo"] == algo for u in updates)
    assert any(u["rows"] > 0 and u["log"] for u in updates)
    assert json.loads((run_dir / "summary.json").read_text())["steps_run"] == 2
    # every update is anchored to the base model (hf:DIR as on disk), not to the weights being tuned ...
    trained = sum(u["rows"] > 0 for u in updates)
    base = _weights(sft)
    assert len(references) == trained
    for reference in references:
        weights = reference.state_dict()
        assert all((weights[k] == base[k]).all() for k in base)
    # ... while the tuned optimizer, saved to rl_model/, moved away from it
    assert (final["final_model"], final["after_step"], final["updates"]) == ("rl_model", 2, trained)
    tuned = run_dir / "rl_model"
    assert _changed(base, _weights(tuned))
    completion = build_llm(f"hf:{tuned}").generate([Request(({"role": "user", "content": "1"},), 1.0, 4, 0)])[0]
    assert completion.finish_reason in ("stop", "length")
    assert find_runs(tmp_path) == [run_dir]  # rl_model/ (config.json, no candidates.csv) is not a run


def test_eval_compares_base_and_tuned(warm, tmp_path, capsys):
    root, task, base, sft = warm
    out = tmp_path / "eval"
    with pytest.raises(SystemExit) as stop:
        main(["rl", "eval", "--base", f"hf:{base}", "--tuned", f"hf:{sft}", "--task", str(task), "--prompts", "3",
              "--samples", "4", "--max-tokens", "12", "--runs", "1", "--steps", "1", "--out", str(out)])
    assert stop.value.code == 0
    assert "valid_rate" in capsys.readouterr().out
    reports = json.loads((out / "eval.json").read_text())
    assert [r["proposals"] for r in reports] == [12, 12]
    base_report, tuned = reports
    assert tuned["valid_rate"] > base_report["valid_rate"]  # the warm start learned the answer format
    assert tuned["runs"] == 1 and tuned["mean_final_gap_percent"] is not None
    header, rule, *rows = (out / "eval.md").read_text().splitlines()  # metrics as rows, the two models as columns
    assert header.count("|") == 4 and rule.count("---") == 3
    assert any(row.startswith("| valid_rate |") for row in rows)
    assert_plot(out / "eval.png")
