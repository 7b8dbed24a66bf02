"""The "rich" story style: the plain stories' plot with far more choices at every step.

`trainer.stories` (style "plain") tells one plot from small word lists and one or two ways
of saying each sentence: about 37 nats of choices per story, 0.24 nats per token, so a small
model reaches that floor within a few thousand steps and architectures differ only in how
fast they memorise it. Here the same plot (a character, a place, a find, a loss, help, an
ending, with names, pronouns and objects that come back) draws from larger lists, says each
step in several ways, adds optional scenes in a random order and sometimes a second episode,
so there is several times as much to predict per token and less of it can be memorised.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from trainer.story_cast import character, forms


def _words(text: str) -> list[str]:
    return text.split()


GIRLS = _words("""Lily Mia Sue Anna Emma Lucy Zoe Ella Amy Rosa Kim Nora Ruby Jane Maya Sara Ivy Alice
Chloe Grace Hannah Isla Julia Katie Lena Molly Nina Olive Pia Rita Stella Tara Una Vera Wendy
Yara Bella Clara Daisy Elsie""")
BOYS = _words("""Tom Ben Max Sam Leo Tim Jack Finn Jake Noah Luke Owen Eli Joe Dan Mark Theo Bob Adam
Carl Ezra Felix George Henry Ian Jonah Kai Liam Milo Nate Oscar Pete Quinn Ray Seth Toby Vince
Will Zack Hugo""")
ANIMALS = dict(
    w.split(":")
    for w in _words("""dog:he cat:she bunny:she bear:he bird:she frog:he duck:she fox:he mouse:she
lion:he owl:she pig:he turtle:he squirrel:she goat:he sheep:she puppy:he kitten:she
hedgehog:he deer:she""")
)
PET_NAMES = _words("""Spot Fluffy Pip Coco Buddy Daisy Rex Bella Sunny Milo Poppy Ziggy Nutmeg Pebble
Biscuit Socks Ginger Pudding Scout Maple Clover Bubbles Tiger Peanut Muffin""")
ADJECTIVES = _words("""little happy curious brave shy kind silly small friendly clever gentle funny
busy sleepy quiet cheerful playful helpful proud careful lucky tiny young bold sweet""")
OPENERS = [
    "Once upon a time",
    "One day",
    "Long ago",
    "One sunny morning",
    "Once",
    "Not long ago",
    "One rainy day",
    "In a small town",
    "One cold winter day",
    "One warm summer day",
    "A long time ago",
]
TIMES = _words("morning afternoon evening day weekend Saturday Sunday")
FEELINGS_BAD = _words("sad scared worried upset cross lonely nervous unhappy")
FEELINGS_GOOD = _words("happy proud glad excited thankful calm cheerful relieved")
RELATIONS = {
    "mom": "She",
    "dad": "He",
    "grandma": "She",
    "grandpa": "He",
    "sister": "She",
    "brother": "He",
    "aunt": "She",
    "uncle": "He",
    "teacher": "She",
    "neighbor": "He",
}
COLORS = _words("""red blue green yellow big shiny soft tiny pink purple gold white black brown
striped spotted round little""")
NUMBERS = _words("two three four five six seven eight")
WEATHER = [
    "The sun was shining.",
    "The sky was blue.",
    "It was a windy day.",
    "There were big clouds in the sky.",
    "The air was warm and sweet.",
    "It had rained, and the ground was wet.",
    "Birds were singing in the trees.",
    "It was cold, so everyone wore a coat.",
]
FOODS = _words("apples cookies sandwiches cake soup bread cheese grapes pie berries")
GAMES = ["tag", "hide and seek", "catch", "ball", "pretend", "house", "chase"]

# place -> (objects, activities, where a lost thing goes, the fix for each, in that order)
PLACES = {
    "park": (
        _words("ball kite swing leaf stick flower hat yo-yo"),
        ["play on the swings", "run on the grass", "fly a kite", "slide down the slide"],
        ["into the pond", "up into a tall tree", "into a thick bush"],
        ["used a long stick to pull it out", "climbed up and got it", "reached in slowly"],
    ),
    "beach": (
        _words("shell bucket crab rock spade boat towel starfish"),
        ["build sand castles", "swim in the sea", "look for shells", "dig in the sand"],
        ["into the waves", "into a deep pool", "into a sandy hole"],
        ["ran into the water and caught it", "waded in and grabbed it", "dug very fast"],
    ),
    "forest": (
        _words("mushroom pinecone acorn feather berry nest stone map"),
        ["climb trees", "listen to the birds", "walk on the path", "pick berries"],
        ["into a deep hole", "into a fast stream", "under a pile of leaves"],
        ["lay down and reached into the hole", "found it with a stick", "moved the leaves"],
    ),
    "garden": (
        _words("carrot flower worm seed apple pot snail glove"),
        ["plant seeds", "water the flowers", "dig in the dirt", "pick tomatoes"],
        ["into the well", "into a muddy ditch", "into the tall weeds"],
        ["lowered a bucket on a rope", "pulled it out with a rake", "cut the weeds away"],
    ),
    "farm": (
        _words("egg lamb pig hat bale tractor chick bell"),
        ["feed the animals", "ride on the tractor", "collect eggs", "brush the horse"],
        ["into the mud", "into the haystack", "into the pig pen"],
        ["put on big boots and stepped in", "dug through the hay", "opened the gate"],
    ),
    "school": (
        _words("crayon book pencil toy block drum sticker ruler"),
        ["draw pictures", "read books", "sing songs", "paint with colors"],
        ["into a big box", "onto a high shelf", "into the back of a drawer"],
        ["climbed on a chair and looked inside", "used a ladder", "pulled out the drawer"],
    ),
    "river": (
        _words("fish stone boat duck log frog net bottle"),
        ["throw stones", "watch the fish", "sail a paper boat", "walk on the bridge"],
        ["into the river", "into the reeds", "down a muddy bank"],
        ["held out a net and scooped it up", "waded in carefully", "used a long branch"],
    ),
    "kitchen": (
        _words("cookie cup spoon cake pan bowl lemon whisk"),
        ["bake cookies", "help make soup", "taste the cake", "wash the fruit"],
        ["into the sink", "into a tall jar", "behind the oven"],
        ["turned off the water and lifted it out", "tipped the jar", "moved the oven"],
    ),
    "zoo": (
        _words("balloon ticket map cap camera peanut flag whistle"),
        ["see the elephants", "watch the monkeys", "feed the goats", "ride the little train"],
        ["into the monkey cage", "into the duck pond", "down a drain"],
        ["asked the keeper, who got it out", "used a net", "lifted the grate"],
    ),
    "library": (
        _words("book bookmark pen card puzzle poster marker sticker"),
        ["read stories", "look at picture books", "listen to a story", "do a puzzle"],
        ["behind the shelf", "into the return box", "under a tall stack of books"],
        ["moved the shelf a little", "opened the box with a key", "took the books down"],
    ),
    "playground": (
        _words("ball rope jacket shoe frisbee scooter whistle bottle"),
        ["play on the slide", "jump rope", "play tag", "swing on the bars"],
        ["into a puddle", "onto the top of the slide", "under the bench"],
        ["stepped in and picked it up", "climbed the ladder", "crawled under"],
    ),
    "market": (
        _words("orange basket coin bag melon hat plum scarf"),
        ["buy fruit", "look at the toys", "smell the flowers", "taste the bread"],
        ["into a big crate", "down a drain", "under a stall"],
        ["lifted the crate", "pulled it out with a hook", "crawled under the stall"],
    ),
}
INDOORS = {"school", "kitchen", "library"}
MORALS = [
    "it is good to share",
    "friends help each other",
    "being brave is important",
    "it is good to be kind",
    "asking for help is okay",
    "you should always be careful",
    "it is good to keep trying",
    "a friend in need is a friend indeed",
    "you should look after your things",
    "working together makes things easy",
]


def _plural(noun: str) -> str:
    if noun in ("fish", "sheep", "starfish"):
        return noun
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def _a(word: str) -> str:
    """`word` with its indefinite article."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


@dataclass(frozen=True)
class _Cast:
    """Who is in one story and where, picked first. `He`/`him`/`his`: the hero's pronouns; the
    helper who came along is `companion` ("her friend Max", "his dad") in narration, `helper_said`
    as a speaker, `helper_call` when the hero calls, and `Helper` as a subject pronoun."""

    name: str
    kind: str
    pronoun: str
    He: str
    him: str
    his: str
    friend: str
    place: str
    activities: list[str]
    at_place: str
    thing: str
    things: str
    color: str
    adjective: str
    bad: str
    good: str
    activity: str
    hazard: str
    fix: str
    companion: str
    helper_said: str
    helper_call: str
    Helper: str


def _cast(rng: random.Random) -> _Cast:
    """Pick the hero, a friend, the place, the thing found there and who comes along to help."""
    pick = rng.choice
    name, kind, pronoun = character(rng, GIRLS, BOYS, ANIMALS, PET_NAMES)
    friend, _, friend_pronoun = character(rng, GIRLS, BOYS, ANIMALS, PET_NAMES)
    while friend == name:
        friend, _, friend_pronoun = character(rng, GIRLS, BOYS, ANIMALS, PET_NAMES)
    He, him, his = forms(pronoun)
    place = pick(list(PLACES))
    objects, activities, hazards, fixes = PLACES[place]
    at_place = f"{'In' if place in INDOORS else 'At'} the {place}"
    thing, color, adjective = pick(objects), pick(COLORS), pick(ADJECTIVES)
    bad, good, activity = pick(FEELINGS_BAD), pick(FEELINGS_GOOD), pick(activities)
    hazard, fix = pick(list(zip(hazards, fixes, strict=True)))
    if rng.random() < 0.6:
        companion, helper_said, helper_call = f"{his} friend {friend}", friend, friend
        Helper = forms(friend_pronoun)[0]
    else:
        relation = pick(list(RELATIONS))
        companion = helper_said = f"{his} {relation}"
        helper_call, Helper = relation.capitalize(), RELATIONS[relation]
    return _Cast(
        name=name,
        kind=kind,
        pronoun=pronoun,
        He=He,
        him=him,
        his=his,
        friend=friend,
        place=place,
        activities=activities,
        at_place=at_place,
        thing=thing,
        things=_plural(thing),
        color=color,
        adjective=adjective,
        bad=bad,
        good=good,
        activity=activity,
        hazard=hazard,
        fix=fix,
        companion=companion,
        helper_said=helper_said,
        helper_call=helper_call,
        Helper=Helper,
    )


def _beginning(rng: random.Random, c: _Cast) -> list[str]:
    """Introduce the hero, say something about them, go to the place, and add a few scenes."""
    pick = rng.choice
    s = [f"{pick(OPENERS)}, there was a {c.adjective} {c.kind} named {c.name}."]
    s.append(
        pick(
            [
                f"{c.He} loved to {c.activity}.",
                f"{c.name} liked to {c.activity} every day.",
                f"{c.He} wanted to {c.activity} with {c.companion}.",
                f"{c.He} lived in a {pick(['small', 'little', 'big', 'yellow'])} house"
                f" with {c.his} {pick(list(RELATIONS))}.",
                f"{c.name} was {pick(['four', 'five', 'six', 'seven'])} years old.",
            ]
        )
    )
    s.append(
        pick(
            [
                f"One {pick(TIMES)}, {c.name} went to the {c.place} with {c.companion}.",
                f"One {pick(TIMES)}, {c.name} and {c.companion} went to the {c.place}.",
                f"On {pick(['a', 'one'])} {pick(TIMES)}, {c.companion} took {c.name} to the {c.place}.",
                f"{c.name} asked {c.companion} to go to the {c.place}, and they went.",
            ]
        )
    )
    scenes = [
        pick(WEATHER),
        f"First, they went to {pick(c.activities)}. It was so much fun!",
        f"They ate {pick(FOODS)} and played {pick(GAMES)}.",
        f'"I love the {c.place}!" said {c.name}.',
        f"{c.name} saw {_a(pick(list(ANIMALS)))} and waved at it.",
    ]
    s.extend(rng.sample(scenes, rng.choice([0, 1, 1, 2, 3])))
    return s


def _find_and_loss(rng: random.Random, c: _Cast) -> list[str]:
    """The hero finds one thing or several at the place, then loses one, and feels it."""
    pick = rng.choice
    s = []
    if rng.random() < 0.5:
        count = pick(NUMBERS)
        s.append(f"{c.at_place}, {c.name} found {count} {c.color} {c.things}.")
        s.append(
            pick(
                [
                    f'"Look, I have {count} {c.things}!" {c.pronoun} said.',
                    f'"{count.capitalize()} {c.things}!" said {c.name}. "I will keep them."',
                    f"{c.He} counted them: {count} {c.things}.",
                ]
            )
        )
        thing_phrase = pick([f"one of the {c.things}", f"the best {c.thing}"])
    else:
        s.append(
            pick(
                [
                    f"{c.at_place}, {c.name} saw a {c.color} {c.thing}.",
                    f"{c.name} found a {c.color} {c.thing}.",
                ]
            )
        )
        s.append(
            pick(
                [
                    f'"What a nice {c.thing}!" said {c.name}. "Can I keep it?"',
                    f"{c.He} picked it up and smiled.",
                    f'"Look at this {c.thing}!" {c.pronoun} said to {c.companion}.',
                ]
            )
        )
        thing_phrase = f"the {c.thing}"
    s.append(
        pick(
            [
                f"But then, {thing_phrase} fell {c.hazard}.",
                f"Oh no! {thing_phrase.capitalize()} rolled {c.hazard}.",
            ]
        )
    )
    if c.adjective in ("brave", "bold"):
        s.append(
            f"{c.name} was not scared. {c.He} tried to get it, but {c.pronoun} could not reach it."
        )
    else:
        s.append(
            pick(
                [
                    f"{c.name} felt {c.bad}. {c.He} did not know what to do.",
                    f"{c.name} began to cry. {c.He} was very {c.bad}.",
                    f"{c.He} felt {c.bad} and sat down.",
                ]
            )
        )
    return s


def _help(rng: random.Random, c: _Cast) -> list[str]:
    """The hero asks for help, the helper gets the thing back, and the hero says thank you."""
    pick = rng.choice
    s = [
        pick(
            [
                f'"{c.helper_call}, can you help me?" asked {c.name}.',
                f'"{c.helper_call}, my {c.thing} is gone!" cried {c.name}.',
                f'"Help, {c.helper_call}!" called {c.name}.',
                f"{c.name} ran to {c.helper_said} and asked for help.",
            ]
        )
    ]
    s.append(
        pick(
            [
                f'"Don\'t worry, I will help you," said {c.helper_said}.',
                f'"I know what to do," said {c.helper_said}.',
                f'"Let me try," said {c.helper_said}.',
            ]
        )
    )
    s.append(f"{c.Helper} {c.fix}.")
    s.append(
        pick(
            [
                f"{c.name} got the {c.color} {c.thing} back and felt {c.good}.",
                f"Now {c.name} had the {c.color} {c.thing} again. {c.He} was so {c.good}!",
                f"{c.name} held the {c.color} {c.thing} tight and felt {c.good}.",
            ]
        )
    )
    s.append(
        pick(
            [
                f'"Thank you, {c.helper_call}!" said {c.name}.',
                f"{c.name} gave {c.helper_said} a big hug.",
            ]
        )
    )
    return s


def _ending(rng: random.Random, c: _Cast) -> list[str]:
    """Maybe a shared meal, then one closing line: a moral, a friendship, or the thing kept."""
    pick = rng.choice
    s = []
    if rng.random() < 0.3:
        food = pick(FOODS)
        s.append(
            f"Later, they sat down to eat {food}. {c.name} shared {c.his} {food} with {c.companion}."
        )
    ending = rng.random()
    if ending < 0.35:
        s.append(f"{c.name} learned that {pick(MORALS)}.")
    elif ending < 0.6 and c.helper_said == c.friend:
        s.append(f"From that day on, {c.name} and {c.friend} were best friends.")
    elif ending < 0.8:
        s.append(f"Then they went home and {c.name} put the {c.thing} on {c.his} shelf.")
    else:
        s.append(f"That night, {c.name} went to sleep with the {c.thing} next to {c.him}.")
    return s


def story(rng: random.Random) -> str:
    """One story: setting, scenes, a find, a loss at the place, help, maybe more, an ending."""
    cast = _cast(rng)
    s = _beginning(rng, cast)
    s += _find_and_loss(rng, cast)
    s += _help(rng, cast)
    s += _ending(rng, cast)
    return " ".join(s)
