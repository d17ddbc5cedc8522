"""Without an optional extra, the commands that need it print a one-line install hint and exit 2.

The `rl` and `ray` extras are installed here, so the tests hide them: a fault-injecting import layer (a
sitecustomize on PYTHONPATH) makes `import torch` (and the others named) raise ModuleNotFoundError in the
`opro` subprocess, as on a machine without the extra.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.hidden_modules import opro_without


def test_the_hiding_layer_hides(tmp_path):
    done = opro_without("torch", ["--version"], tmp_path)
    assert done.returncode == 0
    probe = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, text=True, cwd=tmp_path,
                           env={**os.environ, "PYTHONPATH": str(tmp_path / "hiding_layer"),
                                "OPRO_TEST_HIDDEN_MODULES": "torch"})
    assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr


@pytest.mark.parametrize(("hidden", "args", "message"), [
    ("torch", ["run", "--optimizer", "hf:some-model", "--steps", "1"], "the hf: backend needs the 'rl' extra"),
    ("transformers", ["run", "--optimizer", "hf:m", "--steps", "1"], "(transformers is not installed)"),
    ("torch", ["rl", "eval", "--base", "hf:a", "--tuned", "hf:b"], "the hf: backend needs the 'rl' extra"),
    ("torch", ["rl", "convert", "--out", "model"], "opro rl convert needs the 'rl' extra"),
    ("gguf", ["rl", "convert", "--out", "model"], "(gguf is not installed)"),
    ("trl", ["rl", "train", "--model", "hf:m", "--algo", "sft", "--out", "m"], "opro rl train --algo sft needs"),
    ("torch", ["run", "--optimizer", "hf:m", "--rl-every", "1", "--steps", "1"], "--rl-every needs the 'rl' extra"),
    ("ray", ["sweep", "grid.toml", "--backend", "ray"], "--backend ray needs the 'ray' extra"),
])
def test_a_missing_extra_is_one_line_with_the_install_hint(tmp_path, hidden, args, message):
    (tmp_path / "grid.toml").write_text('task = "tsp"\n[set]\n"loop.steps" = 1\n')
    done = opro_without(hidden, args, tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert message in lines[0] and "pip install 'opro[" in lines[0]
    assert not (tmp_path / "results").exists() and not (tmp_path / "model").exists()
