"""Kept so older imports work: the test doubles live in tests/doubles.py."""

from tests.doubles import ScriptedLLM

__all__ = ["ScriptedLLM"]
