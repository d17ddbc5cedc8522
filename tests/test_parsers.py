"""The proposal parsers: exact on good text, never raising on any text."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from opro.problems import Invalid
from opro.problems.linreg import parse_pair
from opro.problems.tsp import parse_trace
from tests.tiers import examples

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
NUMBER_TEXT = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400).map(str),
    FLOATS.map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e999", "1e-400", "0x10", "1_000", "١٢"]),
)


def test_trace_happy_paths():
    assert parse_trace("<trace> 0,2,1,3 </trace>", 4) == (0, 2, 1, 3)
    assert parse_trace("Sure! <trace>3, 1, 0, 2</trace>.", 4) == (3, 1, 0, 2)
    assert parse_trace("<TRACE> 0 1 2 3 </TRACE>", 4) == (0, 1, 2, 3)
    assert parse_trace("<trace> 0,1,2,3,0 </trace>", 4) == (0, 1, 2, 3)  # closed back to the start
    assert parse_trace("old <trace> 0,1,2,3 </trace> new <trace> 1,0,2,3 </trace>", 4) == (1, 0, 2, 3)
    assert parse_trace("<trace> 0,1,2,3", 4) == (0, 1, 2, 3)  # truncated before the closing tag


def test_trace_invalid_reasons():
    assert parse_trace("no tags here 0,1,2", 3) == Invalid("no <trace> tag")
    assert parse_trace("<trace></trace>", 3) == Invalid("empty trace")
    assert parse_trace("<trace> 0,1,x </trace>", 3) == Invalid("trace is not a list of node indices")
    assert parse_trace("<trace> 0,1,1 </trace>", 3) == Invalid("repeated nodes")
    assert parse_trace("<trace> 0,1 </trace>", 3) == Invalid("missing nodes: [2]")
    assert parse_trace("<trace> 0,1,7 </trace>", 3) == Invalid("nodes out of range: [7]")
    assert parse_trace("<trace> 0,-1,2 </trace>", 3) == Invalid("trace is not a list of node indices")
    assert parse_trace("<trace> 0 -> 2 -> 1 </trace>", 3) == (0, 2, 1)


def test_pair_happy_paths():
    assert parse_pair("[15, 14]") == (15, 14)
    assert parse_pair("I think [w=15.4, b=13.6] is it") == (15, 14)
    assert parse_pair("first [1, 2] then [3.5, -4.5]") == (4, -4)  # the last pair; halves round to even
    assert parse_pair("[1e2, -2E1]") == (100, -20)


def test_pair_invalid_reasons():
    assert parse_pair("w=15, b=14") == Invalid("no [w, b] pair")
    assert parse_pair("[nan, 3]") == Invalid("no [w, b] pair")
    assert parse_pair("[1e400, 3]") == Invalid("not finite")
    assert isinstance(parse_pair("[1e13, 3]"), Invalid)


@settings(max_examples=examples(400), deadline=None)
@given(st.text(), st.integers(min_value=3, max_value=60))
def test_trace_never_raises(text, n):
    result = parse_trace(text, n)
    assert isinstance(result, Invalid) or sorted(result) == list(range(n))


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.one_of(st.integers(min_value=-(10**30), max_value=10**30).map(str), st.text(max_size=4)),
                max_size=12), st.integers(min_value=3, max_value=12))
def test_trace_fuzzed_lists_never_raise(items, n):
    result = parse_trace("<trace> " + ",".join(items) + " </trace>", n)
    assert isinstance(result, Invalid) or sorted(result) == list(range(n))


@settings(max_examples=examples(400), deadline=None)
@given(st.text())
def test_pair_never_raises_on_text(text):
    result = parse_pair(text)
    assert isinstance(result, Invalid) or all(isinstance(v, int) for v in result)


@settings(max_examples=examples(400), deadline=None)
@given(NUMBER_TEXT, NUMBER_TEXT, st.text(max_size=20))
def test_pair_never_raises_on_numbers(w, b, noise):
    result = parse_pair(f"{noise} [{w}, {b}]")
    if not isinstance(result, Invalid):
        assert all(isinstance(v, int) and abs(v) <= 1e12 for v in result)


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(min_value=-(10**6), max_value=10**6), st.integers(min_value=-(10**6), max_value=10**6))
def test_pair_round_trips_integers(w, b):
    assert parse_pair(f"[{w}, {b}]") == (w, b)


@settings(max_examples=examples(100), deadline=None)
@given(st.floats(min_value=-1e6, max_value=1e6), st.floats(min_value=-1e6, max_value=1e6))
def test_pair_rounds_floats(w, b):
    result = parse_pair(f"[{w!r}, {b!r}]")
    assert not isinstance(result, Invalid)
    assert abs(result[0] - w) <= 0.5 + 1e-9 and abs(result[1] - b) <= 0.5 + 1e-9
    assert not any(math.isnan(v) for v in result)
