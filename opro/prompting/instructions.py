"""Reading an instruction out of an optimizer's output, as pure functions (reference: opt_utils.run_evolution's
<INS>/<Start> handling, extract_string_in_square_brackets, parse_tag_content; eval_utils.polish_sentence)."""

from __future__ import annotations

import re

from opro.scores import Invalid

_BRACKETS = re.compile(r"\[(.*?)\]", re.DOTALL)
_TEXT_TAG = re.compile(r"<TEXT>(.*?)</TEXT>", re.DOTALL)


def parse_instruction(text: str, meta_prompt_type: str) -> str | Invalid:
    """The instruction in an optimizer output, before the filters. Never raises.

    both_instructions_and_exemplars: the text between <INS> and </INS> (either tag may be missing, as the
    reference code reads it; <Start>/</Start> for A_begin too), else the first [...] (the text-bison
    wording), else the whole output. instructions_only: the first <TEXT>...</TEXT>, or what follows a lone
    <TEXT> on its line.
    """
    if meta_prompt_type == "instructions_only":
        found = _TEXT_TAG.search(text)
        if found:
            return polish(found.group(1))
        if "<TEXT>" in text:
            return polish(text.split("<TEXT>", 1)[1].split("\n")[0])
        return Invalid("no <TEXT> tag")
    for opening, closing in (("<INS>", "</INS>"), ("<Start>", "</Start>")):
        if opening in text or closing in text:
            start = text.index(opening) + len(opening) if opening in text else 0
            end = text.index(closing, start) if closing in text[start:] else len(text)
            return polish(text[start:end])
    found = _BRACKETS.search(text)
    if found:
        return polish(found.group(1))
    return polish(text)  # no tag at all: the whole output, as the reference code reads GPT optimizers


def polish(sentence: str) -> str:
    """Stripped, without markdown bold, first letter capitalized (reference: eval_utils.polish_sentence)."""
    sentence = sentence.strip().replace("**", "")
    return sentence[0].upper() + sentence[1:] if len(sentence) > 1 else sentence
