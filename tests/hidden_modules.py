"""Run `opro` in a subprocess as on a machine without some packages: a sitecustomize on PYTHONPATH makes their
import raise ModuleNotFoundError (for the tests of the one-line install hints of the optional extras)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HIDING_LAYER = '''"""Fault injection for tests: the modules named in $OPRO_TEST_HIDDEN_MODULES cannot be imported."""
import os
import sys

HIDDEN = {name for name in os.environ.get("OPRO_TEST_HIDDEN_MODULES", "").split(",") if name}


class HiddenModules:
    """A meta-path finder that refuses the hidden top-level packages, like an environment without them."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)
        return None


sys.meta_path.insert(0, HiddenModules())
'''


def opro_without(hidden: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    layer = cwd / "hiding_layer"
    layer.mkdir(exist_ok=True)
    (layer / "sitecustomize.py").write_text(HIDING_LAYER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(layer), os.environ.get("PYTHONPATH", "")]),
           "OPRO_TEST_HIDDEN_MODULES": hidden}
    return subprocess.run([sys.executable, "-m", "opro.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)
