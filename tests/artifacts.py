"""Checks on what a command wrote, by content rather than by existence."""

from __future__ import annotations

from pathlib import Path


def assert_plot(path: Path, min_side: int = 100) -> None:
    """`path` is a PNG that decodes to an image of at least `min_side` pixels a side, and is not blank."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) >= min_side, (path, pixels.shape)
    assert pixels[..., :3].std() > 0.01, f"{path} is blank"
