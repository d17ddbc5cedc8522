"""Final-answer extraction and accuracy, as the paper's evaluation does it (reference: opro/evaluation/metrics.py
and eval_utils.py of google-deepmind/opro).

`extract_answer(text, kind)` turns a scorer's raw output into a short normalized answer; `is_correct(parsed,
gold, kind, question)` compares it with the gold answer. A `\\boxed{...}` in the output is the answer (the
last one; the reference reads the first, for GPT scorers only). Answer kinds:

- "number" (GSM8K, MultiArith, BBH object_counting / multistep_arithmetic_two): the text after "the answer
  is" / "####" / "answer:", then after the last "=", without currency, thousands separators, percent signs
  and units, number words read as digits ("eight" -> 8, "ninety-one" -> 91). Without an answer marker, or
  with nothing after it, the last number; a marker followed by text without a number gives "" (as the
  reference). Compared as numbers rounded to the gold's decimals.
- "bool" (BBH boolean_expressions, causal_judgement, formal_fallacies, navigate, sports_understanding,
  web_of_lies): true/yes/valid/1 against false/no/invalid/0.
- "choice" (BBH multiple choice, AQuA): the option letter "(B)" or "B", or the option's text when it names
  the gold option and no other one (the options are the question's lines that start with "(A)", "(B)", ...;
  texts match as whole words; an option whose text holds the gold's, "east west" beside "west", counts as
  named).
- "text" (BBH dyck_languages, word_sorting): exact match after lower-casing (and again without punctuation),
  or the gold contained in the answer (the reference code's `treat_include_as_correct` for non-numeric targets).

Pure functions; they never raise on any text.
"""

from __future__ import annotations

import re
import string

from opro.parsing import head

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
_TENS, _UNITS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"), (
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_COMPOUND_WORD = re.compile(r"\b(" + "|".join(_TENS) + r")[- ](" + "|".join(_UNITS) + r")\b")
_NUMBER = re.compile(r"(?<!\d)-?\d+(?:\.\d+)?")
_CHOICE = re.compile(r"\(([a-z])\)")
_OPTION_LINE = re.compile(r"^\(([A-Z])\)[ \t]*(.*)$", re.MULTILINE)
_OPTION_INLINE = re.compile(r"\(([A-Z])\)\s*(.*?)(?=\s*\([A-Z]\)|\n|$)")
_BOXED = "\\boxed{"
_TRUE, _FALSE = ("true", "yes", "valid", "1"), ("false", "no", "invalid", "0")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def extract_answer(text: str, kind: str) -> str:
    """The normalized final answer in a raw scorer output (empty when there is none); only the output's first
    MAX_PARSED_CHARS characters are read (opro.parsing)."""
    answer, indicated, whole = _answer_span(head(text)[0])
    if kind == "number":
        return _number_answer(answer, indicated, whole)
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


def _answer_span(text: str) -> tuple[str, bool, str]:
    """Lower-cased text cut to the answer: the last \\boxed{...}, else after an "answer is" marker, before
    "is the answer"; whether a marker was found; and the whole output. A next question the model started on
    its own is cut off (unless the output starts with it)."""
    span = text.lower().strip()
    for mark in _NEXT_QUESTION:
        head = span.split(mark)[0]
        span = head if head.strip() else span
    whole = span
    boxed = _last_boxed(span)
    if boxed is not None:
        return boxed.strip(), True, whole
    indicated = False
    behind = _BEHIND_PRIMARY if any(m in span for m in _BEHIND_PRIMARY) else _BEHIND_SECONDARY
    for mark in (_GSM8K_MARK, *behind):
        if mark in span:
            span, indicated = span.split(mark)[-1], True
    for mark in _AHEAD:
        if mark in span:
            span, indicated = span.split(mark)[0], True
    span = span.strip().rstrip(".").rstrip("'").strip()
    return span, indicated, whole


def _last_boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (braces balanced: \\boxed{\\frac{1}{2}} holds \\frac{1}{2}), or None."""
    start = text.rfind(_BOXED)
    if start < 0:
        return None
    depth, begin = 1, start + len(_BOXED)
    for at in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[at], 0)
        if depth == 0:
            content = text[begin:at]
            for wrapper in ("\\text{", "\\textbf{", "\\mathrm{"):  # \\boxed{\\text{(B)}}
                if content.startswith(wrapper) and content.endswith("}"):
                    content = content[len(wrapper):-1]
            return content
    return None


def _numbers(text: str) -> list[str]:
    """The numbers in a text, in order, with number words read as digits."""
    for symbol in ("$", ",", "%", "€", "£"):
        text = text.replace(symbol, "")
    text = _COMPOUND_WORD.sub(lambda m: str(_WORD_TO_NUMBER[m.group(1)] + _WORD_TO_NUMBER[m.group(2)]), text.lower())
    return _NUMBER.findall(_NUMBER_WORD.sub(lambda m: str(_WORD_TO_NUMBER[m.group(1)]), text))


def _number_answer(span: str, indicated: bool, whole: str) -> str:
    """A number as a plain decimal string ("1,200 dollars" -> "1200"), or "" when there is none: the first
    number after the last "=" of a marked answer, else the last one. The last number of the whole output
    stands in only where there is no marker or nothing follows it (the reference: a marked answer without a
    number is no answer)."""
    found = _numbers(span.split("=")[-1])
    if not found and (not indicated or not span):
        found, indicated = _numbers(whole), False
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
    options = question_options(question)
    gold_text = options.get(letter)
    if not gold_text or _CHOICE.fullmatch(parsed) or not _names(parsed, gold_text):
        return False
    others = [t for k, t in options.items() if k != letter and t]
    # reference (_get_accuracy): the gold's text is taken out before looking for the others, unless another
    # option's text holds it ("east west" beside "west"): then that option named anywhere is another answer
    inside_other = any(_names(t, gold_text) for t in others)
    rest = parsed if inside_other else re.sub(_word(gold_text), " ", parsed)
    return not any(_names(rest, t) for t in others)


def question_options(question: str) -> dict[str, str]:
    """Option letter (lower case) -> option text (lower case, no final period) of a multiple-choice question:
    its lines that start with "(A)", "(B)", ... (the first line of each letter: AQuA's closing line "What's
    the answer in (A) (B) ...?" names no option); options on one line when there are no such lines."""
    found = _OPTION_LINE.findall(question) or _OPTION_INLINE.findall(question)
    options: dict[str, str] = {}
    for key, text in found:
        options.setdefault(key.lower(), text.strip().lower().rstrip(".").strip())
    return options


def _word(text: str) -> str:
    """A pattern for `text` standing on its own (not inside a longer word or number)."""
    return r"(?<![a-z0-9])" + re.escape(text) + r"(?![a-z0-9])"


def _names(answer: str, text: str) -> bool:
    return re.search(_word(text), answer) is not None


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
