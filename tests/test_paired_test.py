"""The exact McNemar test that judges one instruction against another on the same held-out questions
(benchmarks/capable_model.py): only the questions where the two disagree count."""

from __future__ import annotations

import pytest
from scipy.stats import binomtest

from opro.stats import mcnemar_exact


def test_agreeing_answers_carry_no_evidence():
    assert mcnemar_exact([True, False, True], [True, False, True]) == (0, 0, 1.0)


def test_the_discordant_questions_are_counted_each_way():
    first = [True, True, True, False, False, True]
    second = [False, False, True, True, False, True]
    assert mcnemar_exact(first, second)[:2] == (2, 1)


@pytest.mark.parametrize(("only_first", "only_second"), [(9, 1), (1, 9), (7, 3), (12, 0), (5, 5), (30, 18)])
def test_the_p_value_is_the_two_sided_binomial_one(only_first, only_second):
    first = [True] * only_first + [False] * only_second + [True] * 4
    second = [False] * only_first + [True] * only_second + [True] * 4  # four agreeing questions, ignored
    expected = binomtest(only_first, only_first + only_second, 0.5).pvalue
    assert mcnemar_exact(first, second)[2] == pytest.approx(expected)


def test_lists_of_different_lengths_are_not_paired():
    with pytest.raises(ValueError):
        mcnemar_exact([True, False], [True])
