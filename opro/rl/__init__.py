"""The RL hook: improve the optimizer LLM itself on OPRO episodes (export, rewards, TRL training, eval).

An OPRO step is a GRPO group: the state is the meta-prompt, an action is one proposal, the reward is what
the task's scorer says about it. `episodes` makes meta-prompts (from run directories or fresh random
instances), `export` writes them as datasets, `rewards` scores completions, `train` runs TRL.
The heavy dependencies (torch, transformers, trl, datasets) are the `rl` extra; import them lazily.
"""
