"""Fixed histories and the cases of the meta-prompt fidelity tests (tests/test_metaprompt_reference.py).

tests/data/metaprompts/make_reference.py renders each case with the reference implementation's own
gen_meta_prompt functions (google-deepmind/opro e81b2f5) and writes tests/data/metaprompts/<case>.txt; the
test renders the same case with opro and compares the texts byte for byte.

Scores are chosen so that the reference's set-ordered histories (TSP, linreg) have no ties after its int()
truncation, and so that truncation and rounding differ (826.7 shows as 826). The instruction history has
ties (older first; at the top-20 cap the newer one stays in) and a score at an exact half bucket (57.5%).
"""

from __future__ import annotations

from dataclasses import dataclass

#: TSP: integer coordinates (the reference's num_decimals = 0) and (trace, length) in the order found.
TSP_COORDS = [(-47, 12), (33, -81), (90, 5), (-2, 64), (71, 70), (-88, -39), (15, -7)]
TSP_HISTORY = [
    ((0, 1, 2, 3, 4, 5, 6), 826.7), ((0, 2, 4, 6, 1, 3, 5), 1103.2), ((0, 3, 6, 2, 5, 1, 4), 1250.9),
    ((0, 6, 5, 4, 3, 2, 1), 903.5), ((0, 5, 3, 1, 6, 4, 2), 1188.1), ((0, 4, 1, 5, 2, 6, 3), 1342.0),
    ((0, 1, 3, 5, 2, 4, 6), 977.49), ((0, 2, 1, 4, 3, 6, 5), 1011.99), ((0, 6, 1, 2, 3, 4, 5), 615.3),
    ((0, 3, 4, 2, 1, 6, 5), 588.6), ((0, 5, 6, 1, 2, 4, 3), 701.0), ((0, 4, 2, 3, 6, 1, 5), 1420.8),
]
TSP_TOP_K = 10  # reference optimize_tsp.py: max_num_pairs = 10

#: Linear regression: ((w, b), value) in the order found; more than the top 20.
LINREG_HISTORY = [((10 + i, 20 - i), 1000.0 * (i % 7) + 37.0 * i + 0.75) for i in range(23)]
LINREG_TOP_K = 20  # reference optimize_linear_regression.py: max_num_pairs = 20

#: Instructions with accuracies in percent (the reference's fractions times 100), in the order found: 22
#: entries, ties at 50 and 75, and one at 57.5 (an exact half bucket).
INSTRUCTION_HISTORY = [
    ("Let's solve the problem.", 50.0), ("Think step by step.", 75.0), ("Read the question twice.", 25.0),
    ("Be careful with units.", 50.0), ("Answer directly.", 12.5), ("Check each step.", 75.0),
    ("List what is known first.", 57.5), ("Work backwards from the goal.", 37.5), ("Draw a diagram.", 62.5),
    ("Explain your reasoning, then answer.", 87.5), ("Solve it slowly.", 50.0), ("Use simple words.", 5.0),
    ("Restate the problem.", 45.0), ("Double-check the arithmetic.", 80.0), ("Consider each option.", 30.0),
    ("Take a deep breath.", 82.5), ("Break it into parts.", 75.0), ("Write the equation first.", 67.5),
    ("Guess and verify.", 20.0), ("Estimate, then compute.", 70.0), ("State the final answer clearly.", 90.0),
    ("Be concise.", 50.0),
]
INSTRUCTION_TOP_K = 20  # reference optimize_instructions.py: max_num_instructions = 20

#: Training examples shown as exemplars (all three, in this order), BBH style.
EXEMPLARS = [
    ("If you follow these instructions, do you return to the starting point? Take 3 steps. Turn around. "
     "Take 3 steps.\nOptions:\n- Yes\n- No", "Yes"),
    ("Today is Christmas Eve of 1937. What is the date tomorrow in MM/DD/YYYY?\nOptions:\n(A) 12/25/1937\n"
     "(B) 12/24/1937", "(A)"),
    ("not ( True ) and ( True ) is", "False"),
]
BBH_TASK = "logical_deduction_five_objects"  # the instructions_only task description


@dataclass(frozen=True)
class InstructionCase:
    """One rendering of the instruction meta-prompt; `name` is its file in tests/data/metaprompts/."""

    family: str
    meta_prompt_type: str = "both_instructions_and_exemplars"
    position: str = "Q_begin"
    qa_format: bool = True
    num_exemplars: int = 3
    instructions_before_exemplars: bool = True
    num_score_buckets: int | str = 100  # "raw": the reference's np.inf
    shown_threshold: float = 0.0  # percent; the reference's old_instruction_score_threshold is a fraction

    @property
    def name(self) -> str:
        kind = "both" if self.meta_prompt_type == "both_instructions_and_exemplars" else "only"
        parts = [f"instructions-{self.family}-{kind}-{self.position}"]
        if kind == "both":
            parts += ["qa" if self.qa_format else "noqa", "ex" if self.num_exemplars else "noex"]
        if not self.instructions_before_exemplars:
            parts.append("exfirst")
        if self.num_score_buckets != 100:
            parts.append(f"b{self.num_score_buckets}")
        if self.shown_threshold:
            parts.append(f"t{int(self.shown_threshold)}")
        return "-".join(parts)


def instruction_cases() -> list[InstructionCase]:
    """Every family x type x position x exemplars x QA format the reference allows, and the knobs."""
    cases = []
    for family in ("gpt", "bison"):
        for position in ("before_Q", "Q_begin", "Q_end", "A_begin"):
            for qa_format in (True, False):
                if not qa_format and position in ("before_Q", "A_begin"):
                    continue  # the reference asserts Q_begin or Q_end without QA format
                for num_exemplars in (3, 0):
                    cases.append(InstructionCase(family, position=position, qa_format=qa_format,
                                                 num_exemplars=num_exemplars))
        for position in ("Q_begin", "A_begin"):
            cases.append(InstructionCase(family, position=position, instructions_before_exemplars=False))
        cases.append(InstructionCase(family, num_score_buckets=20))
        cases.append(InstructionCase(family, num_score_buckets="raw"))
        cases.append(InstructionCase(family, shown_threshold=30.0))
        for position in ("Q_begin", "Q_end", "A_begin"):
            cases.append(InstructionCase(family, "instructions_only", position=position))
        cases.append(InstructionCase(family, "instructions_only", num_score_buckets=20))
        cases.append(InstructionCase(family, "instructions_only", num_score_buckets="raw"))
    return cases
