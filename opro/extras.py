"""Optional extras: a feature that needs one names the pip install in one line instead of a traceback."""

from __future__ import annotations

import importlib

from opro.errors import OproError


def require(*modules: str, extra: str, feature: str) -> None:
    """Import each of `modules`; a missing one (or one that fails to import) is a one-line OproError that says
    `feature` needs `pip install 'opro[extra]'`."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as error:
            missing = getattr(error, "name", None) or name
            raise OproError(f"{feature} needs the {extra!r} extra ({missing} is not installed): "
                            f"pip install 'opro[{extra}]'") from None
