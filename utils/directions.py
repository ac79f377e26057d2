"""The two directions of a CycleGAN translation, by name: "AtoB" is the paper's G: X -> Y (the
generator g_AB), "BtoA" its F: Y -> X (g_BA). Plain Python, so every module may import it."""

DIRECTIONS = ("AtoB", "BtoA")


def domains(direction):
    """(source, target) domain of a direction: "AtoB" -> ("A", "B")."""
    return {"AtoB": ("A", "B"), "BtoA": ("B", "A")}[direction]


def reverse(direction):
    """The direction that translates back: the second half of the cycle (paper eq. 2)."""
    return {"AtoB": "BtoA", "BtoA": "AtoB"}[direction]
