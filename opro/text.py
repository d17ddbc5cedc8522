"""Text that enters the project (model replies, command-line arguments) is made valid Unicode once, there.

A lone surrogate (a model reply with "\\ud800", an argument of bytes that are not UTF-8, which Python keeps
as "\\udcff") cannot be written as UTF-8: every file write, and every replay of a cached reply, would fail
on it. `valid_text` replaces each one with U+FFFD; an argument's undecodable bytes are decoded as UTF-8
first, with U+FFFD for what is not.
"""

from __future__ import annotations

REPLACEMENT = "\ufffd"


def valid_text(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (a valid pair becomes its character)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def valid_argument(text: str) -> str:
    """A command-line argument as valid text: the bytes Python kept as surrogates (surrogateescape) decoded
    as UTF-8, U+FFFD where they are not."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # surrogates that are not escaped bytes
        return valid_text(text)
