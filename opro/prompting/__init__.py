"""Prompt optimization (paper §4-5): datasets, scorer prompts, answer extraction, the score cache, evaluation."""
