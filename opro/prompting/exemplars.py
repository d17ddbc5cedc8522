"""The meta-prompt's exemplars, as pure functions: the picks built on wrong answers (the reference's
opt_utils.run_evolution, few_shot_selection_criteria "current_most_frequent" and "accumulative_most_frequent",
on which this project's "wrong" builds), and their layout under the family's heading (opt_utils.gen_meta_prompt)."""

from __future__ import annotations

from collections import Counter

import numpy as np


def most_frequent_picks(criterion: str, outcomes: list[tuple[bool, ...]], n: int,
                        rng: np.random.Generator) -> list[int]:
    """Training positions to show, from `outcomes` (per instruction, per training question: answered right).

    "current_most_frequent" (`outcomes` of the shown instructions): a random pick of `n` among the questions
    missed by the most instructions, sorted; with fewer than `n` of those, the `n` most missed, most first.
    "accumulative_most_frequent" (`outcomes` of every instruction of the run): every missed question, most
    missed first, when there are at most `n`; else a random pick of `n` among all of them, sorted (the
    reference draws from the whole list, whatever the counts). Ties rank the earlier question first. No
    missed question: no exemplars, as the reference.
    """
    missed: Counter[int] = Counter()
    for outcome in outcomes:
        missed.update(i for i, right in enumerate(outcome) if not right)
    ranked = sorted(missed, key=lambda i: (-missed[i], i))
    if criterion == "accumulative_most_frequent":
        if len(ranked) <= n:
            return ranked
        pool = ranked
    else:
        pool = [i for i in ranked if missed[i] == missed[ranked[0]]] if ranked else []
        if len(pool) < n:
            return ranked[:n]
    return sorted(int(i) for i in rng.choice(pool, size=n, replace=False))


#: The exemplar block's heading, per meta-prompt family (reference: opt_utils.gen_meta_prompt).
EXEMPLAR_HEADINGS = {
    "gpt": "Below are some problems.\n",
    "bison": "The following exemplars show how to apply your text: you replace <INS> in each input with your "
             "text, then read the input and give an output. We say your output is wrong if your output is "
             "different from the given output, and we say your output is correct if they are the same. When "
             "replacing <INS> with an old piece of text above, we get wrong outputs on the following inputs.\n\n",
}


def exemplar_text(question: str, answer: str, position: str, qa_format: bool, family: str) -> str:
    """One exemplar of the meta-prompt, as the reference's gen_meta_prompt writes it.

    With QA format: "\\ninput:\\n" and the question with <INS> in place ("Q: <INS>\\n{q}\\nA:" for Q_begin,
    one newline before "A:", unlike the scorer's prompt); GPT wording at A_begin: "\\nQ: {q}\\nA: <Start>",
    without the input label. Without it (the reference has only Q_begin and Q_end): "\\nProblem:\\n" (GPT) or
    "\\ninput:\\n" (bison), then "<INS>\\n{q}\\n" or "{q}\\n<INS>\\n"; before_Q is laid out as Q_begin and
    A_begin as Q_end here (beyond the reference). Then the answer: "\\nGround truth answer:\\n{a}\\n" (GPT)
    or "\\noutput:\\n{a}\\n" (bison).
    """
    gpt = family == "gpt"
    slot = "<Start>" if gpt and position == "A_begin" else "<INS>"
    if qa_format:
        if position == "A_begin":
            prompt = f"\nQ: {question}\nA: <Start>" if gpt else f"\ninput:\nQ: {question}\nA: <INS>"
        else:
            prompt = "\ninput:\n" + {"before_Q": f"<INS>\nQ: {question}\nA:", "Q_begin": f"Q: <INS>\n{question}\nA:",
                                    "Q_end": f"Q: {question}\n<INS>\nA:"}[position]
    else:
        label = "\nProblem:\n" if gpt else "\ninput:\n"
        before = position in ("before_Q", "Q_begin")
        prompt = label + (f"{slot}\n{question}\n" if before else f"{question}\n{slot}\n")
    return prompt + (f"\nGround truth answer:\n{answer}\n" if gpt else f"\noutput:\n{answer}\n")
