"""Write the expected meta-prompts of tests/test_metaprompt_reference.py with the reference's own code.

    python tests/data/metaprompts/make_reference.py [/tmp/ref/opro]

The argument is an unpacked google-deepmind/opro (commit e81b2f5, the folder holding optimization/ and
evaluation/). Nothing here re-implements the reference: the functions are taken from its source files with
`ast` and run as they are, with NumPy and pandas; the one import they would pull in beyond that
(`opro.evaluation.eval_utils`, used only for MMLU exemplars) is a stub. The nested `gen_meta_prompt` of
optimize_tsp.py and optimize_linear_regression.py are lifted out of their `main` the same way.

Inputs, as the reference takes them: TSP (trace string, int(length)) pairs in a set (optimize_tsp.py stores
int lengths when num_decimals = 0); linreg (w, b, value) triples in a set (num_output_decimals = 0 makes it
int(value)); instructions (instruction, accuracy as a fraction, step) in the order found, with BBH exemplars
as {"input", "target"} records. The cases and histories are tests/metaprompt_cases.py.
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))  # the checkout, for tests.metaprompt_cases

from tests import metaprompt_cases as cases  # noqa: E402


def reference_functions(path: Path, names: set[str]) -> dict[str, object]:
    """The functions `names` of the file at `path` (top-level or nested, e.g. in main), compiled as written."""
    tree = ast.parse(path.read_text())
    found = [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name in names]
    namespace: dict[str, object] = {"np": np, "pd": pd, "eval_utils": types.SimpleNamespace()}
    exec(compile(ast.Module(body=found, type_ignores=[]), str(path), "exec"), namespace)  # noqa: S102
    missing = names - namespace.keys()
    if missing:
        raise SystemExit(f"{path}: no function {sorted(missing)}")
    return namespace


def main(ref: Path) -> None:
    tsp = reference_functions(ref / "optimization" / "optimize_tsp.py", {"gen_meta_prompt"})["gen_meta_prompt"]
    linreg = reference_functions(ref / "optimization" / "optimize_linear_regression.py",
                                 {"gen_meta_prompt"})["gen_meta_prompt"]
    opt_utils = reference_functions(ref / "optimization" / "opt_utils.py",
                                    {"_bucketize_float", "gen_ins_and_score_pairs_substr", "gen_meta_prompt"})

    x, y = [c[0] for c in cases.TSP_COORDS], [c[1] for c in cases.TSP_COORDS]
    traces = {(",".join(map(str, trace)), int(length)) for trace, length in cases.TSP_HISTORY}
    write("tsp", tsp(traces, x, y, max_num_pairs=cases.TSP_TOP_K))

    pairs = {(w, b, z) for (w, b), z in cases.LINREG_HISTORY}
    write("linreg", linreg(pairs, None, None, num_input_decimals=0, num_output_decimals=0,
                           max_num_pairs=cases.LINREG_TOP_K))

    history = [(text, score / 100, step) for step, (text, score) in enumerate(cases.INSTRUCTION_HISTORY)]
    data = [{"input": question, "target": answer} for question, answer in cases.EXEMPLARS]
    for case in cases.instruction_cases():
        write(case.name, opt_utils["gen_meta_prompt"](
            old_instructions_and_scores=history,
            instruction_pos=case.position,
            optimizer_llm_name="gpt-4" if case.family == "gpt" else "text-bison",
            old_instruction_score_threshold=case.shown_threshold / 100,
            max_num_instructions=cases.INSTRUCTION_TOP_K,
            meta_prompt_type=case.meta_prompt_type,
            few_shot_qa_pairs=bool(case.num_exemplars),
            include_qa=case.qa_format,
            data=data,
            few_shot_index_list=list(range(case.num_exemplars)),
            instructions_before_exemplars=case.instructions_before_exemplars,
            num_score_buckets=np.inf if case.num_score_buckets == "raw" else case.num_score_buckets,
            dataset_name="bbh",
            task_name=cases.BBH_TASK,
        ))


def write(name: str, text: str) -> None:
    (HERE / f"{name}.txt").write_text(text)
    print(f"wrote {name}.txt ({len(text)} characters)")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ref/opro"))
