"""The two domains and the two directions of a CycleGAN translation, by name: "AtoB" is the paper's G: X -> Y
(the generator g_AB), "BtoA" its F: Y -> X (g_BA). The one home of these names, their labels and their
command-line help (translate.py, export.py, the page, the evaluation). Plain Python, so every module may import it.
"""

DOMAINS = ("A", "B")                              # the book's names of the two image collections (paper: X, Y)
DIRECTIONS = ("AtoB", "BtoA")
GENERATORS = {"AtoB": "g_AB", "BtoA": "g_BA"}   # the generator that translates each way
_DOMAINS = {"AtoB": ("A", "B"), "BtoA": ("B", "A")}


def check_direction(direction):
    """`direction` if it is "AtoB" or "BtoA", else a ValueError naming it and the two choices."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction={direction!r}: must be 'AtoB' (A -> B, g_AB) or 'BtoA' (B -> A, g_BA)")
    return direction


def domains(direction):
    """(source, target) domain of a direction: "AtoB" -> ("A", "B")."""
    return _DOMAINS[check_direction(direction)]


def reverse(direction):
    """The direction that translates back: the second half of the cycle (paper eq. 2)."""
    return {"AtoB": "BtoA", "BtoA": "AtoB"}[check_direction(direction)]


def label(direction, names=DOMAINS, arrow="→"):
    """A direction for a reader: 'AtoB' -> 'A → B (g_AB)'. names: the words for A and B, in that order
    (('Monet', 'photo') -> 'Monet → photo (g_AB)'); arrow: '->' where only ASCII goes."""
    words = dict(zip(DOMAINS, names))
    source, target = domains(direction)
    return f"{words[source]} {arrow} {words[target]} ({GENERATORS[direction]})"


def cycle_label(direction, names=DOMAINS, arrow="→"):
    """The cycle that starts with `direction`: 'AtoB' -> 'A → B → A (cycled back)' (paper eq. 2)."""
    words = dict(zip(DOMAINS, names))
    source, target = domains(direction)
    return f"{words[source]} {arrow} {words[target]} {arrow} {words[source]} (cycled back)"


# The --direction flag's help, one text for every command that takes it.
DIRECTION_HELP = "AtoB: g_AB (A -> B), BtoA: g_BA (B -> A)"
