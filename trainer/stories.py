"""A seeded generator of short English stories in the style of TinyStories.

The embedded corpus needs no download. Its stories have structure at several ranges so that
a small Transformer's loss tells models apart: pronouns agree with the character, names and
objects introduced early come back later (copying needs attention and positions), each place
has its own objects, problems and fixes, and dialogue follows quoting conventions.

Two styles (`data.story_style`): "plain" (the default), this module's small word lists and
one or two ways of saying each sentence, and "rich" (`trainer.stories_rich`), the same plot
with many more choices. Plain stories hold at most 37 nats of choices each, 0.24 nats per
token: a small model nears that floor within about a thousand steps, and its architecture
ablations do not rank as the CS336 handout expects; rich ones come closer
(`bench/fidelity.py`, README "What the shipped ablations find").
"""

from __future__ import annotations

import random

from trainer import stories_rich
from trainer.story_cast import character, forms

GIRLS = [
    "Lily",
    "Mia",
    "Sue",
    "Anna",
    "Emma",
    "Lucy",
    "Zoe",
    "Ella",
    "Amy",
    "Rosa",
    "Kim",
    "Nora",
    "Ruby",
    "Jane",
    "Maya",
    "Sara",
    "Ivy",
    "Alice",
]
BOYS = [
    "Tom",
    "Ben",
    "Max",
    "Sam",
    "Leo",
    "Tim",
    "Jack",
    "Finn",
    "Jake",
    "Noah",
    "Luke",
    "Owen",
    "Eli",
    "Joe",
    "Dan",
    "Mark",
    "Theo",
    "Bob",
]
ANIMALS = {
    "dog": "he",
    "cat": "she",
    "bunny": "she",
    "bear": "he",
    "bird": "she",
    "frog": "he",
    "duck": "she",
    "fox": "he",
    "mouse": "she",
    "lion": "he",
}
ANIMAL_NAMES = [
    "Spot",
    "Fluffy",
    "Pip",
    "Coco",
    "Buddy",
    "Daisy",
    "Rex",
    "Bella",
    "Sunny",
    "Milo",
    "Poppy",
    "Ziggy",
]
ADJECTIVES = [
    "little",
    "happy",
    "curious",
    "brave",
    "shy",
    "kind",
    "silly",
    "small",
    "friendly",
    "clever",
]
OPENERS = ["Once upon a time", "One day", "Long ago", "One sunny morning", "Once"]
TIMES = ["morning", "afternoon", "evening", "day"]
FEELINGS_BAD = ["sad", "scared", "worried", "upset"]
FEELINGS_GOOD = ["happy", "proud", "glad", "excited"]
RELATIONS = {
    "mom": "She",
    "dad": "He",
    "grandma": "She",
    "grandpa": "He",
    "sister": "She",
    "brother": "He",
}
COLORS = ["red", "blue", "green", "yellow", "big", "shiny", "soft", "tiny"]
NUMBERS = ["two", "three", "four", "five", "six"]

# place -> (objects found there, activities, hazard the object falls into, fixer's action)
PLACES = {
    "park": (
        ["ball", "kite", "swing", "leaf", "stick", "flower"],
        ["play on the swings", "run on the grass", "fly a kite"],
        "the pond",
        "used a long stick to pull it out",
    ),
    "beach": (
        ["shell", "bucket", "crab", "rock", "spade", "boat"],
        ["build sand castles", "swim in the sea", "look for shells"],
        "the waves",
        "ran into the water and caught it",
    ),
    "forest": (
        ["mushroom", "pinecone", "acorn", "feather", "berry", "nest"],
        ["climb trees", "listen to the birds", "walk on the path"],
        "a deep hole",
        "lay down and reached into the hole",
    ),
    "garden": (
        ["carrot", "flower", "worm", "seed", "apple", "pot"],
        ["plant seeds", "water the flowers", "dig in the dirt"],
        "the well",
        "lowered a bucket on a rope",
    ),
    "farm": (
        ["egg", "lamb", "pig", "hat", "bale", "tractor"],
        ["feed the animals", "ride on the tractor", "collect eggs"],
        "the mud",
        "put on big boots and stepped in",
    ),
    "school": (
        ["crayon", "book", "pencil", "toy", "block", "drum"],
        ["draw pictures", "read books", "sing songs"],
        "a big box",
        "climbed on a chair and looked inside",
    ),
    "river": (
        ["fish", "stone", "boat", "duck", "log", "frog"],
        ["throw stones", "watch the fish", "sail a paper boat"],
        "the river",
        "held out a net and scooped it up",
    ),
    "kitchen": (
        ["cookie", "cup", "spoon", "cake", "pan", "bowl"],
        ["bake cookies", "help make soup", "taste the cake"],
        "the sink",
        "turned off the water and lifted it out",
    ),
}
INDOORS = {"school", "kitchen"}
MORALS = [
    "it is good to share",
    "friends help each other",
    "being brave is important",
    "it is good to be kind",
    "asking for help is okay",
    "you should always be careful",
]


def story(rng: random.Random) -> str:
    """One story: setting, a find, a problem at the place, help, and an ending."""
    name, kind, pronoun = character(rng, GIRLS, BOYS, ANIMALS, ANIMAL_NAMES)
    friend, _, friend_pronoun = character(rng, GIRLS, BOYS, ANIMALS, ANIMAL_NAMES)
    while friend == name:
        friend, _, friend_pronoun = character(rng, GIRLS, BOYS, ANIMALS, ANIMAL_NAMES)
    He, him, his = forms(pronoun)
    place = rng.choice(list(PLACES))
    objects, activities, hazard, fix = PLACES[place]
    at_place = f"{'In' if place in INDOORS else 'At'} the {place}"
    thing = rng.choice(objects)
    color = rng.choice(COLORS)
    adjective = rng.choice(ADJECTIVES)
    bad, good = rng.choice(FEELINGS_BAD), rng.choice(FEELINGS_GOOD)
    if rng.random() < 0.6:
        companion, helper_said, helper_call = f"{his} friend {friend}", friend, friend
        Helper = forms(friend_pronoun)[0]
    else:
        relation = rng.choice(list(RELATIONS))
        companion = helper_said = f"{his} {relation}"
        helper_call, Helper = relation.capitalize(), RELATIONS[relation]

    s = [f"{rng.choice(OPENERS)}, there was a {adjective} {kind} named {name}."]
    s.append(
        rng.choice(
            [
                f"{He} loved to {rng.choice(activities)}.",
                f"{name} liked to {rng.choice(activities)} every day.",
                f"{He} wanted to {rng.choice(activities)} with {companion}.",
            ]
        )
    )
    s.append(
        rng.choice(
            [
                f"One {rng.choice(TIMES)}, {name} went to the {place} with {companion}.",
                f"One {rng.choice(TIMES)}, {name} and {companion} went to the {place}.",
            ]
        )
    )
    if rng.random() < 0.5:
        s.append(rng.choice(["The sun was shining.", "The sky was blue.", "It was a windy day."]))
    if rng.random() < 0.4:
        s.append(f"First, they went to {rng.choice(activities)}. It was so much fun!")
    found, thing_phrase = _find(rng, at_place, name, pronoun, color, thing)
    s += found
    s.append(f"But then, {thing_phrase} fell into {hazard}.")
    if adjective == "brave":
        s.append(f"{name} was not scared. {He} tried to get it, but {pronoun} could not reach it.")
    else:
        s.append(f"{name} felt {bad}. {He} did not know what to do.")
    s.append(
        rng.choice(
            [
                f'"{helper_call}, can you help me?" asked {name}.',
                f'"{helper_call}, my {thing} is gone!" cried {name}.',
            ]
        )
    )
    s.append(f'"Don\'t worry, I will help you," said {helper_said}.')
    s.append(f"{Helper} {fix}.")
    s.append(f"{name} got the {color} {thing} back and felt {good}.")
    s.append(f'"Thank you, {helper_call}!" said {name}.')
    s.append(_ending(rng, name, friend if helper_said == friend else None, f"{his} shelf", thing))
    return " ".join(s)


def _find(
    rng: random.Random, at_place: str, name: str, pronoun: str, color: str, thing: str
) -> tuple[list[str], str]:
    """What the child finds at the place (one thing, or several), and how the loss names it."""
    colored_thing = f"{color} {thing}"
    if rng.random() < 0.5:
        count = rng.choice(NUMBERS)
        found = [f"{at_place}, {name} found {count} {colored_thing}s."]
        found.append(f'"Look, I have {count} {thing}s!" {pronoun} said.')
        return found, f"one of the {thing}s"
    found = [f"{at_place}, {name} saw a {colored_thing}."]
    found.append(f'"What a nice {thing}!" said {name}. "Can I keep it?"')
    return found, f"the {thing}"


def _ending(rng: random.Random, name: str, friend: str | None, shelf: str, thing: str) -> str:
    """A moral, a friendship (`friend`: the friend who helped, if one did), or home."""
    ending = rng.random()
    if ending < 0.4:
        return f"{name} learned that {rng.choice(MORALS)}."
    if ending < 0.7 and friend is not None:
        return f"From that day on, {name} and {friend} were best friends."
    return f"Then they went home and {name} put the {thing} on {shelf}."


STYLES = {"plain": story, "rich": stories_rich.story}


def generate_stories(num_stories: int, seed: int, style: str = "plain") -> list[str]:
    """`num_stories` stories in `style` ("plain": this module's, or "rich"), the same per seed."""
    rng = random.Random(seed)
    tell = STYLES[style]
    return [tell(rng) for _ in range(num_stories)]
