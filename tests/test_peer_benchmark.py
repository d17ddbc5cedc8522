"""The plumbing of benchmarks/peer_methods.py (the peers side by side), without a server: its arguments, the
shared split and step 0, and the tables. Skipped without the `peers` extra."""

from __future__ import annotations

import pytest

pytest.importorskip("promptolution")
pytest.importorskip("gepa")

from benchmarks import peer_methods as bench  # noqa: E402


def test_arguments_default_to_the_small_benchmark_and_refuse_unknown_methods():
    args = bench.parse_args(["--data", "d"])
    assert args.tasks == ["bbh", "gsm8k"] and args.methods == ["opro", "ga", "gepa"]
    assert (args.train, args.test, args.budget) == (6, 12, 30)  # the measured settings
    with pytest.raises(SystemExit):
        bench.parse_args(["--data", "d", "--methods", "opro,capo"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--data", "d", "--methods", "de", "--population", "3"])


def test_step_0_is_the_toolkits():
    assert bench.initial_instructions("opro", 4) == ["Let's solve the problem."]
    evo = bench.initial_instructions("evoprompt-ga", 4)
    assert evo[0] == "Let's solve the problem." and len(set(evo)) == 4


def test_every_implementation_gets_the_toolkits_split(shared_data):
    train, test = bench.load_split("bbh", str(shared_data), 5, 7)
    assert len(train) == 5 and len(test) == 7
    assert not {e.uid for e in train} & {e.uid for e in test}
    assert bench.right(f"The answer is {train[0].answer}.", train[0])  # the toolkit's answer check


def test_the_tables_pair_each_toolkit_method_with_its_peer():
    ours = bench.Result("opro toolkit opro", "Think.", 30, 1000, 10.0, 50.0, 40.0, 0.0, [True] * 4 + [False] * 6)
    peer = bench.Result("promptolution OPRO", "Solve | it.", 30, 2000, 40.0, 50.0, 45.0, 10.0, [False] * 10)
    text = bench.table("bbh", [ours, peer]) + bench.ratios([(ours, peer)])
    assert "Solve \\| it." in text and "| 45.0 | 10.0 | 30 |" in text  # test accuracy, then its truncation rate
    # train and test differences, the exact McNemar p of 4 questions only ours got right, then the ratios
    assert "| +0.0 | -5.0 | 0.12 | 1.00 | 0.50 | 0.25 |" in text


def test_ape_runs_on_the_toolkits_side_alone():
    assert bench.parse_args(["--data", "d", "--methods", "opro,ape"]).methods == ["opro", "ape"]
    assert bench.PAIRS["ape"] == ("ape", None) and bench.PAIRS["gepa"] == ("gepa", "gepa.optimize")
