"""Answer extraction and accuracy on hand-written scorer outputs, one case per branch; instruction parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opro.problems import Invalid
from opro.problems.prompt import PromptOptimization, parse_instruction
from opro.prompting.extract import extract_answer, is_correct
from opro.prompting.scoring import scorer_prompt

NUMBER_CASES = [
    ("Janet has 16 - 3 - 4 = 9 eggs. She sells them for $2 each. The answer is 18.", "18"),  # "answer is"
    ("She makes 9 * 2 = $18 every day.\n#### 18", "18"),  # GSM8K "####"
    ("9 * 2 = 18", "18"),  # the last "="
    ("So she makes $1,200.", "1200"),  # currency and thousands separators
    ("The answer is 5600 pounds.", "5600"),  # units after the number
    ("The answer is 156kgs", "156"),  # units glued to the number
    ("The answer is: eight apples", "8"),  # number words
    ("The answer is 50%.", "50"),  # percent
    ("First 3 apples, then 4 more, so 7 in total", "7"),  # the last number as fallback
    ("18 is the answer because 9 * 2 = 18.", "18"),  # "is the answer" ahead of it
    ("The answer is 2.50 dollars", "2.5"),  # decimals
    ("I do not know.", ""),  # no number at all
    ("The answer is 7.\nQ: Another question with 99 apples?", "7"),  # a self-started next question is cut
]


@pytest.mark.parametrize(("text", "expected"), NUMBER_CASES)
def test_number_extraction(text, expected):
    assert extract_answer(text, "number") == expected


def test_number_accuracy_compares_values():
    assert is_correct("18", "18", "number")
    assert is_correct("18", "18.0", "number")
    assert is_correct("1200", "1,200", "number")
    assert not is_correct("17", "18", "number")
    assert not is_correct("", "18", "number")
    assert is_correct("2.5", "2.50", "number")


@pytest.mark.parametrize(("text", "gold", "right"), [
    ("No, you do not return to the starting point.", "No", True),
    ("The answer is yes.", "Yes", True),
    ("The answer is: False", "False", True),
    ("true", "False", False),
    ("The argument is valid.", "valid", True),  # last word
    ("The answer is invalid.", "valid", False),
    ("1", "True", True),  # 0/1 as booleans
    ("Maybe.", "No", False),
])
def test_boolean_answers(text, gold, right):
    assert is_correct(extract_answer(text, "bool"), gold, "bool") is right


QUESTION = "Where does the sun rise?\nOptions:\n(A) west\n(B) east\n(C) north\n(D) south"


@pytest.mark.parametrize(("text", "right"), [
    ("The answer is (B).", True),  # bracketed letter
    ("(B) east", True),  # letter with its text
    ("B", True),  # bare letter
    ("The answer is (A).", False),
    ("The sun rises in the east", True),  # option text alone
    ("It is east, not west", False),  # another option named too
    ("(A) or (B)", False),  # two letters
])
def test_multiple_choice_answers(text, right):
    assert is_correct(extract_answer(text, "choice"), "(B)", "choice", QUESTION) is right


def test_text_answers():
    assert is_correct(extract_answer("The answer is ] ].", "text"), "] ]", "text")
    assert is_correct(extract_answer("syndrome therefrom", "text"), "syndrome therefrom", "text")
    assert not is_correct(extract_answer("therefrom syndrome", "text"), "syndrome therefrom", "text")


@given(st.text(max_size=300), st.sampled_from(["number", "bool", "choice", "text"]))
def test_extraction_never_raises(text, kind):
    parsed = extract_answer(text, kind)
    assert isinstance(parsed, str)
    assert isinstance(is_correct(parsed, "(B)" if kind == "choice" else "18", kind, QUESTION), bool)


def test_scorer_prompt_positions():
    q, ins = "What is 1+1?", "Think."
    assert scorer_prompt(q, ins, "before_Q") == "Think.\nQ: What is 1+1?\n\nA:"
    assert scorer_prompt(q, ins, "Q_begin") == "Q: Think.\nWhat is 1+1?\n\nA:"
    assert scorer_prompt(q, ins, "Q_end") == "Q: What is 1+1?\nThink.\n\nA:"
    assert scorer_prompt(q, ins, "A_begin") == "Q: What is 1+1?\n\nA: Think."
    assert scorer_prompt(q, ins, "Q_begin", qa_format=False) == "Think.\nWhat is 1+1?"
    assert scorer_prompt(q, ins, "Q_end", qa_format=False) == "What is 1+1?\nThink."
    assert scorer_prompt(q, ins, "A_begin", qa_format=False) == "What is 1+1?\n\nThink."
    assert scorer_prompt(q, ins, "before_Q", qa_format=False) == "Think.\n\nWhat is 1+1?"
    for position in ("before_Q", "Q_begin", "Q_end", "A_begin"):  # no instruction: no stray line
        assert scorer_prompt(q, "", position) == "Q: What is 1+1?\n\nA:"


def test_instruction_parsing_by_meta_prompt_type():
    both = "both_instructions_and_exemplars"
    assert parse_instruction("Sure! <INS>take it slowly.</INS> Done", both) == "Take it slowly."
    assert parse_instruction("<INS> Read twice", both) == "Read twice"  # missing closing tag
    assert parse_instruction("<Start>Let's see.</Start>", both) == "Let's see."
    assert parse_instruction("My text: [Work **carefully**.]", both) == "Work carefully."
    assert parse_instruction("  just this  ", both) == "Just this"
    assert parse_instruction("Precision: 3 <TEXT>Be exact.</TEXT>", "instructions_only") == "Be exact."
    assert parse_instruction("<TEXT>Be exact\nmore", "instructions_only") == "Be exact"
    assert parse_instruction("no tag", "instructions_only") == Invalid("no <TEXT> tag")


def test_instruction_filters(shared_data):
    gsm = PromptOptimization(dataset="gsm8k", data=str(shared_data), train_limit=3)
    assert gsm.parse("<INS>Add 2 and 3.</INS>") == Invalid("contains digits")
    assert gsm.parse("<INS></INS>") == Invalid("empty instruction")
    assert gsm.parse("<INS>" + "a" * 501 + "</INS>") == Invalid("longer than 500 characters")
    assert gsm.parse("[Use INS here]") == Invalid("contains INS")
    assert gsm.parse("<INS>Think step by step.</INS>") == "Think step by step."
    bbh = PromptOptimization(dataset="bbh", bbh_task="navigate", data=str(shared_data), train_ratio=0.2)
    assert bbh.parse("<INS>Count 3 steps.</INS>") == "Count 3 steps."  # digits are fine outside GSM8K
