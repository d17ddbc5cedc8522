"""opro: large language models as optimizers (Yang et al., ICLR 2024).

The Python API (opro/api.py): `opro.run`, `opro.resume`, `opro.load`, `opro.optimize`, and the `Problem`
protocol with its `ProblemBase` defaults (opro/problems/base.py) for a problem of your own. The names load on
first use, so `import opro` stays light for the command line.
"""

from typing import Any

from opro.errors import OproError

__version__ = "0.1.0"
__all__ = ["Invalid", "OproError", "Problem", "ProblemBase", "Run", "RunGroup", "__version__", "load", "optimize",
           "resume", "run"]

_API = {"run", "resume", "load", "optimize", "Run", "RunGroup"}
_PROBLEMS = {"Problem", "ProblemBase", "Invalid"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from opro import api

        return getattr(api, name)
    if name in _PROBLEMS:
        from opro.problems import base

        return getattr(base, name)
    raise AttributeError(f"module 'opro' has no attribute {name!r}")
