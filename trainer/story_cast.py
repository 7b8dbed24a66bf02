"""Who a generated story is about: one character, and the pronoun forms its sentences use.

Shared by both story styles (`trainer.stories`, `trainer.stories_rich`), each with its own
word lists."""

from __future__ import annotations

import random


def character(
    rng: random.Random,
    girls: list[str],
    boys: list[str],
    animals: dict[str, str],
    animal_names: list[str],
) -> tuple[str, str, str]:
    """(name, what it is, pronoun) for a child or an animal; `animals` maps kind to pronoun."""
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(girls), "girl", "she"
    if roll < 0.8:
        return rng.choice(boys), "boy", "he"
    kind = rng.choice(list(animals))
    return rng.choice(animal_names), kind, animals[kind]


def forms(pronoun: str) -> tuple[str, str, str]:
    """Capitalised subject, object and possessive forms of the pronoun."""
    return ("She", "her", "her") if pronoun == "she" else ("He", "him", "his")
