"""Reading model output in linear time: the part of an answer a parser reads, and tag scans by `str.find`.

A server that ignores `max_tokens`, or a long reply, must not stall a step: every parser of model output reads
at most `MAX_PARSED_CHARS` characters (the end that holds a valid answer: the head for the first tag, the
tail for the last one) and scans with `str.find` and patterns without nested quantifiers. An answer that is
invalid says how many characters were not read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from opro.problems.base import Invalid

T = TypeVar("T")

#: Characters of one answer a parser reads: far more than any valid answer needs (a TSP trace of 2000 nodes is
#: about 12 000 characters; an instruction at most a few thousand).
MAX_PARSED_CHARS = 100_000
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def head(text: str, limit: int = MAX_PARSED_CHARS) -> tuple[str, int]:
    """The first `limit` characters of `text`, and how many were dropped after them."""
    return text[:limit], max(0, len(text) - limit)


def tail(text: str, limit: int = MAX_PARSED_CHARS) -> tuple[str, int]:
    """The last `limit` characters of `text`, and how many were dropped before them."""
    return text[-limit:] if len(text) > limit else text, max(0, len(text) - limit)


def noted(found: T, dropped: int) -> T | Invalid:
    """`found`; an Invalid one says how many characters of the answer were not read."""
    from opro.problems.base import Invalid  # here: the problems import this module

    if isinstance(found, Invalid) and dropped:
        return Invalid(f"{found.reason} ({dropped} characters of the answer beyond {MAX_PARSED_CHARS} not read)")
    return found


def blocks_between(text: str, opening: str, closing: str, ignore_case: bool = False) -> list[str]:
    """The texts between each `opening` and the first `closing` after it, left to right and not overlapping
    (as `re.findall(opening + "(.*?)" + closing, DOTALL)` reads them, in linear time). `ignore_case` matches
    ASCII tags in any case."""
    folded = text.translate(_ASCII_LOWER) if ignore_case else text  # same length: offsets stay valid
    if ignore_case:
        opening, closing = opening.lower(), closing.lower()
    found, position = [], 0
    while (start := folded.find(opening, position)) >= 0:
        end = folded.find(closing, start + len(opening))
        if end < 0:
            break
        found.append(text[start + len(opening):end])
        position = end + len(closing)
    return found


def last_index(text: str, tag: str, ignore_case: bool = False) -> int:
    """Where the last `tag` in `text` starts (-1: nowhere); `ignore_case` matches an ASCII tag in any case."""
    return (text.translate(_ASCII_LOWER).rfind(tag.lower()) if ignore_case else text.rfind(tag))


def first_between(text: str, opening: str, closing: str) -> str | None:
    """The text between the first `opening` and the first `closing` after it; None when there is none."""
    start = text.find(opening)
    end = text.find(closing, start + len(opening)) if start >= 0 else -1
    return text[start + len(opening):end] if end >= 0 else None
