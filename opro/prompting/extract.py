"""Final-answer extraction and accuracy, as the paper's evaluation does it (reference: opro/evaluation/metrics.py
and eval_utils.py of google-deepmind/opro).

`extract_answer(text, kind)` turns a scorer's raw output into a short normalized answer; `is_correct(parsed,
gold, kind, question)` compares it with the gold answer. Answer kinds:

- "number" (GSM8K, MultiArith, BBH object_counting / multistep_arithmetic_two): the text after "the answer
  is" / "####" / "answer:", then after the last "=", without currency, thousands separators, percent signs
  and units, number words read as digits ("eight" -> 8); without an answer marker the last number. Compared as
  numbers rounded to the gold's decimals.
- "bool" (BBH boolean_expressions, causal_judgement, formal_fallacies, navigate, sports_understanding,
  web_of_lies): true/yes/valid/1 against false/no/invalid/0.
- "choice" (BBH multiple choice, AQuA): the option letter "(B)" or "B", or the option's text when it names
  exactly the gold option.
- "text" (BBH dyck_languages, word_sorting): exact match after lower-casing (and again without punctuation),
  or the gold contained in the answer (the reference code's `treat_include_as_correct` for non-numeric targets).

Pure functions; they never raise on any text.
"""

from __future__ import annotations

import re
import string

KINDS = ("number", "bool", "choice", "text")

_BEHIND_PRIMARY = ("answer is ", "answer: ", "answer is: ")
_BEHIND_SECONDARY = ("is: ", "are: ")
_AHEAD = (" is the correct answer", " is the right answer", " is the final answer", " is the answer")
_GSM8K_MARK = "#### "
_NEXT_QUESTION = ("question:", "q:")
_WORD_TO_NUMBER = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}
_NUMBER_WORD = re.compile(r"\b(" + "|".join(_WORD_TO_NUMBER) + r")\b")
_NUMBER = re.compile(r"(?<!\d)-?\d+(?:\.\d+)?")
_CHOICE = re.compile(r"\(([a-z])\)")
_OPTION = re.compile(r"\(([A-Z])\)\s*([^\n(]*)")
_TRUE, _FALSE = ("true", "yes", "valid", "1"), ("false", "no", "invalid", "0")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def extract_answer(text: str, kind: str) -> str:
    """The normalized final answer in a raw scorer output (empty when there is none)."""
    answer, indicated = _answer_span(text)
    if kind == "number":
        return _number_answer(answer, indicated, text)
    if kind == "choice":
        return _choice_answer(answer)
    if kind == "bool":
        return _bool_answer(answer)
    return answer.split("\n")[0].strip()


def is_correct(parsed: str, gold: str, kind: str, question: str = "") -> bool:
    """Whether a parsed answer matches the gold answer. `question` holds the options of a multiple-choice item."""
    if kind == "number":
        target = _number_answer(str(gold), True, str(gold))
        decimals = len(target.split(".")[1]) if "." in target else 0
        return _same_number(parsed, target, decimals)
    if kind == "bool":
        return _truth(parsed) is not None and _truth(parsed) == _truth(str(gold).lower())
    if kind == "choice":
        return _choice_correct(parsed, str(gold), question)
    pred, target = " ".join(parsed.lower().split()), " ".join(str(gold).lower().split())
    if target and (pred == target or target in pred):
        return True
    pred, target = _plain(parsed), _plain(str(gold))
    return bool(target) and pred == target


def _answer_span(text: str) -> tuple[str, bool]:
    """Lower-cased text cut to the answer: after an "answer is" marker, before "is the answer"; and whether a
    marker was found. A next question the model started on its own is cut off."""
    span = text.lower().strip()
    for mark in _NEXT_QUESTION:
        head = span.split(mark)[0]
        span = head if head.strip() else span
    indicated = False
    behind = _BEHIND_PRIMARY if any(m in span for m in _BEHIND_PRIMARY) else _BEHIND_SECONDARY
    for mark in (_GSM8K_MARK, *behind):
        if mark in span:
            span, indicated = span.split(mark)[-1], True
    for mark in _AHEAD:
        if mark in span:
            span, indicated = span.split(mark)[0], True
    span = span.strip().rstrip(".").rstrip("'").strip()
    return span, indicated


def _number_answer(span: str, indicated: bool, text: str) -> str:
    """A number as a plain decimal string ("1,200 dollars" -> "1200"), or "" when the text has none."""
    span = span.split("=")[-1]
    for symbol in ("$", ",", "%", "€", "£"):
        span = span.replace(symbol, "")
    span = _NUMBER_WORD.sub(lambda m: str(_WORD_TO_NUMBER[m.group(1)]), span.lower())
    found = _NUMBER.findall(span)
    if not found:  # the last number anywhere in the output
        found = _NUMBER.findall(text.lower().replace(",", ""))
        indicated = False
    if not found:
        return ""
    number = found[0] if indicated else found[-1]
    return _format_number(float(number))


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _same_number(parsed: str, target: str, decimals: int) -> bool:
    try:
        return round(float(parsed), decimals) == round(float(target), decimals)
    except ValueError:
        return False


def _choice_answer(span: str) -> str:
    """"(b)" for an answer naming exactly one bracketed option letter, else the first line of the answer."""
    letters = set(_CHOICE.findall(span))
    if len(letters) == 1:
        return f"({letters.pop()})"
    stripped = span.split("\n")[0].strip()
    if len(stripped) == 1 and stripped.isalpha():
        return f"({stripped})"
    return stripped


def _choice_correct(parsed: str, gold: str, question: str) -> bool:
    letter = gold.strip().strip("()").lower()
    if parsed == f"({letter})":
        return True
    options = {key.lower(): text.strip().lower().rstrip(".") for key, text in _OPTION.findall(question)}
    gold_text = options.get(letter)
    if not gold_text or _CHOICE.fullmatch(parsed):
        return False
    others = [t for k, t in options.items() if k != letter and t]
    rest = parsed.replace(gold_text, "")
    return gold_text in parsed and not any(t in rest for t in others)


def _bool_answer(span: str) -> str:
    words = _plain(span).split()
    for word in words[:1] + words[-1:]:
        truth = _truth(word)
        if truth is not None:
            return truth
    return words[0] if words else ""


def _truth(word: str) -> str | None:
    word = word.strip().translate(_PUNCTUATION)
    if word in _TRUE:
        return "true"
    if word in _FALSE:
        return "false"
    return None


def _plain(text: str) -> str:
    return " ".join(text.lower().translate(_PUNCTUATION).split())
