"""Reading an instruction out of an optimizer's output, as pure functions (reference: opt_utils.run_evolution's
<INS>/<Start> handling, extract_string_in_square_brackets, parse_tag_content; eval_utils.polish_sentence)."""

from __future__ import annotations

from opro.parsing import first_between, head, noted
from opro.scores import Invalid


def parse_instruction(text: str, meta_prompt_type: str) -> str | Invalid:
    """The instruction in an optimizer output, before the filters. Never raises.

    both_instructions_and_exemplars: the text between <INS> and </INS> (either tag may be missing, as the
    reference code reads it; <Start>/</Start> for A_begin too), else the first [...] (the text-bison
    wording), else the whole output. instructions_only: the first <TEXT>...</TEXT>, or what follows a lone
    <TEXT> on its line. Linear in the text: only its first MAX_PARSED_CHARS characters are read (opro.parsing).
    """
    text, dropped = head(text)
    return noted(_parse_instruction(text, meta_prompt_type), dropped)


def _parse_instruction(text: str, meta_prompt_type: str) -> str | Invalid:
    if meta_prompt_type == "instructions_only":
        found = first_between(text, "<TEXT>", "</TEXT>")
        if found is not None:
            return polish(found)
        if "<TEXT>" in text:
            return polish(text.split("<TEXT>", 1)[1].split("\n")[0])
        return Invalid("no <TEXT> tag")
    for opening, closing in (("<INS>", "</INS>"), ("<Start>", "</Start>")):
        if opening in text or closing in text:
            start = text.index(opening) + len(opening) if opening in text else 0
            end = text.index(closing, start) if closing in text[start:] else len(text)
            return polish(text[start:end])
    found = first_between(text, "[", "]")
    if found is not None:
        return polish(found)
    return polish(text)  # no tag at all: the whole output, as the reference code reads GPT optimizers


def polish(sentence: str) -> str:
    """Stripped, without markdown bold, first letter capitalized (reference: eval_utils.polish_sentence)."""
    sentence = sentence.strip().replace("**", "")
    return sentence[0].upper() + sentence[1:] if len(sentence) > 1 else sentence
