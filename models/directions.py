"""The two directions of a CycleGAN translation, by name: "AtoB" is the paper's G: X -> Y (the
generator g_AB), "BtoA" its F: Y -> X (g_BA). Plain Python, so every module may import it."""

DIRECTIONS = ("AtoB", "BtoA")
GENERATORS = {"AtoB": "g_AB", "BtoA": "g_BA"}   # the generator that translates each way


def check_direction(direction):
    """`direction` if it is "AtoB" or "BtoA", else a ValueError naming it and the two choices."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r}: must be 'AtoB' (A -> B, g_AB) or 'BtoA' (B -> A, g_BA)")
    return direction


def domains(direction):
    """(source, target) domain of a direction: "AtoB" -> ("A", "B")."""
    return {"AtoB": ("A", "B"), "BtoA": ("B", "A")}[check_direction(direction)]


def reverse(direction):
    """The direction that translates back: the second half of the cycle (paper eq. 2)."""
    return {"AtoB": "BtoA", "BtoA": "AtoB"}[check_direction(direction)]
