"""A metric of the user's own: full credit when the answer names the gold city, half when its first word is
a capitalized guess of another city, none otherwise. (answer, gold) in, a float in [0, 1] out."""


def score(answer: str, gold: str) -> float:
    words = answer.replace(".", " ").replace(",", " ").split()
    if gold.lower() in (w.lower() for w in words):
        return 1.0
    return 0.5 if words and words[0][:1].isupper() else 0.0
