"""opro: large language models as optimizers (Yang et al., ICLR 2024)."""

from opro.errors import OproError

__version__ = "0.1.0"
__all__ = ["OproError", "__version__"]
