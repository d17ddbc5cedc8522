"""Models the project ships: the tuned LoRA adapter of `llamacpp:smollm2-opro` (see smollm2-opro/README.md)."""
