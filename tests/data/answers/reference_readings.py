"""Re-run the reference readings of docs/tasks.md: the reference code's parsing path on each example text.

Needs the reference unpacked at /tmp/ref/opro (google-deepmind/opro e81b2f5); `immutabledict` is stubbed.
Run: .venv/bin/python tests/data/answers/reference_readings.py  (docs/tasks.md: "Answers we read right where the
reference code misreads them"; get the reference with `git clone https://github.com/google-deepmind/opro
/tmp/ref && git -C /tmp/ref checkout e81b2f5`)
"""
import importlib.util
import sys
import types

sys.modules["immutabledict"] = types.SimpleNamespace(ImmutableOrderedDict=dict)
for name in ("opro", "opro.evaluation"):  # the reference's package names, outside our own
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = []


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


metrics = _load("opro.evaluation.metrics", "/tmp/ref/opro/evaluation/metrics.py")
sys.modules["opro.evaluation"].metrics = metrics
eval_utils = _load("opro.evaluation.eval_utils", "/tmp/ref/opro/evaluation/eval_utils.py")


def reference(raw, gold, number=False, question=""):
    """(parsed, correct) as evaluate_single_instruction computes them, for a GPT scorer, without prompting again."""
    if r"\boxed" in raw:
        parsed = eval_utils.re.findall(r"\\boxed{(.*?)}", raw)[0]
    else:
        parsed = metrics.get_normalized_prediction(raw, treat_as_number=number, num_decimals=0)
    parsed = parsed.strip(":").strip().split("\n")[0].split("Q:")[0]
    prompt = f"Q: {question}\n\nA:" if question else ""
    return parsed, bool(eval_utils._get_accuracy(gold, parsed, input_text=prompt, treat_include_as_correct=not number))


SUN = "Where does the sun rise?\nOptions:\n(A) west\n(B) east\n(C) north\n(D) south"
AQUA = ("x men working x hours per day can do x units of a work in x days. How much work can be completed by y men "
        "working y hours per day in y days?\n(A)x2/y2 units\n(B)y3/x2 units\n(C)x3/y2 units\n(D)y2/x2 units\n"
        "(E)None of these\nWhat's the answer in (A) (B) (C) (D) (E)?")
CASES = [
    ("The temperature drops to -5°C.", "-5", True, ""),
    ("The temperature drops to -5°C.", "5", True, ""),
    ("Answer: 18\nShe had 20 eggs at first.", "18", True, ""),
    ("Total: 392", "392", True, ""),
    ("The answer is nineteen.", "19", True, ""),
    ("From the hint (see above), we get (B).", "(B)", False, SUN),
    ("Q: How many eggs? A: The answer is 7.", "7", True, ""),
    ("The answer is y3/x2 units", "(B)", False, AQUA),
    ("east west is reported", "(A)", False, "Where is it reported?\nOptions:\n(A) west\n(B) east west"),
    ("The answer is ninety-one.", "91", True, ""),
    ("So 5 + 8 = 13. The answer is not clear from the question.", "13", True, ""),
    ("The answer is 15", "(A)", False, "How many?\n(A) 5\n(B) 10\n(C) 25"),
    ("\\boxed{\\frac{1}{2}}", "1/2", False, ""),
    ("... = 20 + 80 + 160 = 2", "260", True, ""),
]
for raw, gold, number, question in CASES:
    print(f"{raw!r:70} gold {gold:>5}: reference reads {reference(raw, gold, number, question)}")
