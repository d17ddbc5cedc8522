"""Every parser of model output is linear in the text: a server that ignores max_tokens cannot stall a step.

Each parser reads 1 MB of each hostile pattern (tags opened and never closed, brackets, fences, digits) in a
time compared with parsing a normal answer, measured in the same test: no absolute wall-time bound. The
ratio allowed is generous (a 1 MB text is ~10 000x a normal answer; a quadratic parser took minutes).
"""

from __future__ import annotations

import signal
import time

import pytest

from opro.methods.ape import parse_completion
from opro.methods.evoprompt import parse_prompt_tag
from opro.parsing import MAX_PARSED_CHARS, blocks_between
from opro.problems import Invalid
from opro.problems.linreg import parse_pair
from opro.problems.tsp import parse_trace
from opro.prompting.extract import extract_answer
from opro.prompting.instructions import parse_instruction

MEGABYTE = 1_000_000
PARSERS = {
    "parse_trace": (lambda text: parse_trace(text, 8), "<trace>3,1,0,2,5,4,7,6</trace>"),
    "parse_instruction": (lambda text: parse_instruction(text, "both_instructions_and_exemplars"),
                          "Here it is: [Think step by step.]"),
    "instructions_only": (lambda text: parse_instruction(text, "instructions_only"),
                          "<TEXT>Think step by step.</TEXT>"),
    "parse_prompt_tag": (parse_prompt_tag, "<prompt>Think step by step.</prompt>"),
    "parse_completion": (parse_completion, "Output: Think step by step."),
    "parse_pair": (parse_pair, "w, b = [16, 13]"),
    "extract_answer": (lambda text: extract_answer(text, "number"), "So the answer is 42."),
}
HOSTILE = ["<trace>", "<TRACE>1,", "[", "[1,", "[ ", "<TEXT>", "<INS>", "<prompt>", "```", "1 ", "\\boxed{",
           "answer is ", "(a)"]


class TooSlow(Exception):
    pass


def seconds(parse, text: str, repeat: int = 1, bound: float | None = None) -> float:
    """Seconds per call; past `bound` the parse is stopped (a quadratic parser would take hours)."""

    def stop(*_):
        raise TooSlow

    previous = signal.signal(signal.SIGALRM, stop)
    if bound is not None:
        signal.setitimer(signal.ITIMER_REAL, bound)
    started = time.perf_counter()
    try:
        for _ in range(repeat):
            parse(text)
        return (time.perf_counter() - started) / repeat
    except TooSlow:
        return float("inf")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("name", PARSERS)
def test_each_parser_reads_a_megabyte_of_each_hostile_pattern_in_linear_time(name):
    parse, normal = PARSERS[name]
    per_normal = max(seconds(parse, normal, repeat=200), 1e-6)
    for pattern in HOSTILE:
        hostile = pattern * (MEGABYTE // len(pattern))
        # a linear parser: ~1e4 normal answers' worth of text (less: the text parsed is capped at 100 000
        # characters); a quadratic one is 1e4 times slower again
        bound = 200_000 * per_normal
        assert seconds(parse, hostile, bound=bound) < bound, (name, pattern)


def test_a_long_answer_is_cut_to_what_a_valid_answer_needs_and_says_what_it_did_not_read():
    padding = "x" * (3 * MAX_PARSED_CHARS)
    assert parse_trace(padding + "<trace>0,1,2</trace>", 3) == (0, 1, 2)  # the last trace: the tail is read
    assert parse_instruction("[Be brief.]" + padding, "both_instructions_and_exemplars") == "Be brief."
    missing = parse_trace("<trace>0,1,2</trace>" + padding, 3)
    assert isinstance(missing, Invalid)
    assert missing.reason == f"no <trace> tag ({2 * MAX_PARSED_CHARS + 20} characters of the answer beyond " \
                             f"{MAX_PARSED_CHARS} not read)"


def test_tag_scans_read_what_the_lazy_patterns_read():
    assert blocks_between("a<t>1</t>b<t>2</t><t>3", "<t>", "</t>") == ["1", "2"]
    assert blocks_between("<TRACE>1</Trace>", "<trace>", "</trace>", ignore_case=True) == ["1"]
    assert parse_trace("<trace>0, 1, 2", 3) == (0, 1, 2)  # a truncated answer: the open trace
    assert parse_instruction("[[a] b]", "both_instructions_and_exemplars") == "[a"
    assert parse_instruction("<TEXT>Be brief.\nmore", "instructions_only") == "Be brief."
    assert parse_prompt_tag("<prompt> a </prompt> <prompt>b</prompt>") == "b"
