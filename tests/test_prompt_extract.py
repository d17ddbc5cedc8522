"""Answer extraction and accuracy on hand-written scorer outputs, one case per branch; instruction parsing."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opro.problems import Invalid
from opro.problems.prompt import PromptOptimization
from opro.prompting.data import load_examples
from opro.prompting.extract import extract_answer, is_correct, question_options
from opro.prompting.instructions import parse_instruction
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


# Outputs the reference code misreads (evaluation/metrics.py get_normalized_prediction, then eval_utils's
# parsing and _get_accuracy): (kind, output, gold, our reading). The reference's readings are in docs/tasks.md.
READ_RIGHT = [
    ("number", "The temperature drops to -5°C.", "-5", "-5"),  # reference: "5" (the "°" stops it, digits kept)
    ("number", "Answer: 18\nShe had 20 eggs at first.", "18", "18"),  # reference: "" (it looks for "answer: ")
    ("number", "Total: 392", "392", "392"),  # reference: "" (it cuts at the first ":")
    ("number", "The answer is nineteen.", "19", "19"),  # reference: "9" ("nine" replaced inside "nineteen")
    ("choice", "From the hint (see above), we get (B).", "(B)", "(b)"),  # reference: "(see above)"
    ("number", "Q: How many eggs? A: The answer is 7.", "7", "7"),  # reference: "" (all before "Q:" is empty)
]


@pytest.mark.parametrize(("kind", "text", "gold", "parsed"), READ_RIGHT)
def test_answers_the_reference_misreads(kind, text, gold, parsed):
    assert extract_answer(text, kind) == parsed
    assert is_correct(parsed, gold, kind, QUESTION)


def _aqua_question(tmp_path, options: list[str]) -> str:
    """An AQuA question as opro.prompting.data formats it (options, then the closing "What's the answer" line)."""
    record = {"question": "How much work?", "options": options, "rationale": "", "correct": "B"}
    (tmp_path / "AQuA.json").write_text(json.dumps(record) + "\n")
    (example,) = load_examples("aqua", "test", str(tmp_path))
    return example.question


def test_aqua_option_text_scores(tmp_path):
    question = _aqua_question(tmp_path, ["A)x2/y2 units", "B)y3/x2 units", "C)x3/y2 units", "D)2(x+1) units",
                                         "E)None of these"])
    assert question.endswith("What's the answer in (A) (B) (C) (D) (E)?")
    assert is_correct(extract_answer("The answer is y3/x2 units", "choice"), "(B)", "choice", question)
    assert not is_correct(extract_answer("The answer is x3/y2 units", "choice"), "(B)", "choice", question)
    # an option's text may hold brackets
    assert is_correct(extract_answer("The answer is 2(x+1) units.", "choice"), "(D)", "choice", question)


def test_aqua_option_text_on_the_shared_data(shared_data):
    example = load_examples("aqua", "test", str(shared_data))[107]
    assert "(B)y3/x2 units" in example.question and example.answer == "(B)"
    assert is_correct(extract_answer("The answer is y3/x2 units", "choice"), "(B)", "choice", example.question)


def test_an_option_inside_another_option_is_not_enough():
    question = "Where is it reported?\nOptions:\n(A) west\n(B) east west"
    answer = extract_answer("east west is reported", "choice")
    assert not is_correct(answer, "(A)", "choice", question)
    assert is_correct(answer, "(B)", "choice", question)
    assert is_correct(extract_answer("It is reported in the west.", "choice"), "(A)", "choice", question)


def test_option_text_matches_whole_words_only():
    question = "How many?\n(A) 5\n(B) 10\n(C) 25"
    assert not is_correct(extract_answer("The answer is 15", "choice"), "(A)", "choice", question)
    assert is_correct(extract_answer("The answer is 5", "choice"), "(A)", "choice", question)


@pytest.mark.parametrize(("text", "expected"), [
    ("The answer is ninety-one.", "91"),
    ("The answer is forty-two apples", "42"),
    ("The answer is twenty one.", "21"),
])
def test_hyphenated_number_words(text, expected):
    assert extract_answer(text, "number") == expected


def test_no_last_number_after_an_answer_marker_with_no_number():
    assert extract_answer("So 5 + 8 = 13. The answer is not clear from the question.", "number") == ""
    # nothing follows the marker: the last number before it
    assert extract_answer("So 5 + 8 = 13. The answer is\nQ: What is 99 + 1?", "number") == "13"
    assert extract_answer("I do not know.\nQ: Another question with 99 apples?", "number") == ""


@pytest.mark.parametrize(("text", "kind", "expected"), [
    ("So she has \\boxed{18} eggs, and 20 in all.", "number", "18"),
    ("$\\boxed{\\$1,200}$", "number", "1200"),
    ("First \\boxed{3}, then the final count is \\boxed{7}.", "number", "7"),  # the last one
    ("The answer is \\boxed{B}", "choice", "(b)"),
    ("\\boxed{\\text{True}}", "bool", "true"),
])
def test_boxed_answers(text, kind, expected):
    assert extract_answer(text, kind) == expected


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


def test_options_on_one_line():
    question = "From which direction does the sun rise? (A) west (B) east (C) north (D) south"
    assert question_options(question) == {"a": "west", "b": "east", "c": "north", "d": "south"}
    assert is_correct(extract_answer("It rises in the east.", "choice"), "(B)", "choice", question)
