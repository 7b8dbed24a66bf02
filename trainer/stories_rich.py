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


def _character(rng: random.Random) -> tuple[str, str, str]:
    """(name, what it is, pronoun) for a child or an animal."""
    roll = rng.random()
    if roll < 0.4:
        return rng.choice(GIRLS), "girl", "she"
    if roll < 0.8:
        return rng.choice(BOYS), "boy", "he"
    kind = rng.choice(list(ANIMALS))
    return rng.choice(PET_NAMES), kind, ANIMALS[kind]


def _plural(noun: str) -> str:
    if noun in ("fish", "sheep", "starfish"):
        return noun
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def _a(word: str) -> str:
    """`word` with its indefinite article."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


def _forms(pronoun: str) -> tuple[str, str, str]:
    return ("She", "her", "her") if pronoun == "she" else ("He", "him", "his")


def story(rng: random.Random) -> str:
    """One story: setting, scenes, a find, a loss at the place, help, maybe more, an ending."""
    pick = rng.choice
    name, kind, pronoun = _character(rng)
    friend, _, friend_pronoun = _character(rng)
    while friend == name:
        friend, _, friend_pronoun = _character(rng)
    He, him, his = _forms(pronoun)
    place = pick(list(PLACES))
    objects, activities, hazards, fixes = PLACES[place]
    at_place = f"{'In' if place in INDOORS else 'At'} the {place}"
    thing, color, adjective = pick(objects), pick(COLORS), pick(ADJECTIVES)
    things = _plural(thing)
    bad, good, activity = pick(FEELINGS_BAD), pick(FEELINGS_GOOD), pick(activities)
    hazard, fix = pick(list(zip(hazards, fixes, strict=True)))
    if rng.random() < 0.6:
        companion, helper_said, helper_call = f"{his} friend {friend}", friend, friend
        Helper = _forms(friend_pronoun)[0]
    else:
        relation = pick(list(RELATIONS))
        companion = helper_said = f"{his} {relation}"
        helper_call, Helper = relation.capitalize(), RELATIONS[relation]

    s = [f"{pick(OPENERS)}, there was a {adjective} {kind} named {name}."]
    s.append(
        pick(
            [
                f"{He} loved to {activity}.",
                f"{name} liked to {activity} every day.",
                f"{He} wanted to {activity} with {companion}.",
                f"{He} lived in a {pick(['small', 'little', 'big', 'yellow'])} house"
                f" with {his} {pick(list(RELATIONS))}.",
                f"{name} was {pick(['four', 'five', 'six', 'seven'])} years old.",
            ]
        )
    )
    s.append(
        pick(
            [
                f"One {pick(TIMES)}, {name} went to the {place} with {companion}.",
                f"One {pick(TIMES)}, {name} and {companion} went to the {place}.",
                f"On {pick(['a', 'one'])} {pick(TIMES)}, {companion} took {name} to the {place}.",
                f"{name} asked {companion} to go to the {place}, and they went.",
            ]
        )
    )
    scenes = [
        pick(WEATHER),
        f"First, they went to {pick(activities)}. It was so much fun!",
        f"They ate {pick(FOODS)} and played {pick(GAMES)}.",
        f'"I love the {place}!" said {name}.',
        f"{name} saw {_a(pick(list(ANIMALS)))} and waved at it.",
    ]
    s.extend(rng.sample(scenes, rng.choice([0, 1, 1, 2, 3])))
    if rng.random() < 0.5:
        count = pick(NUMBERS)
        s.append(f"{at_place}, {name} found {count} {color} {things}.")
        s.append(
            pick(
                [
                    f'"Look, I have {count} {things}!" {pronoun} said.',
                    f'"{count.capitalize()} {things}!" said {name}. "I will keep them."',
                    f"{He} counted them: {count} {things}.",
                ]
            )
        )
        thing_phrase = pick([f"one of the {things}", f"the best {thing}"])
    else:
        s.append(
            pick([f"{at_place}, {name} saw a {color} {thing}.", f"{name} found a {color} {thing}."])
        )
        s.append(
            pick(
                [
                    f'"What a nice {thing}!" said {name}. "Can I keep it?"',
                    f"{He} picked it up and smiled.",
                    f'"Look at this {thing}!" {pronoun} said to {companion}.',
                ]
            )
        )
        thing_phrase = f"the {thing}"
    s.append(
        pick(
            [
                f"But then, {thing_phrase} fell {hazard}.",
                f"Oh no! {thing_phrase.capitalize()} rolled {hazard}.",
            ]
        )
    )
    if adjective in ("brave", "bold"):
        s.append(f"{name} was not scared. {He} tried to get it, but {pronoun} could not reach it.")
    else:
        s.append(
            pick(
                [
                    f"{name} felt {bad}. {He} did not know what to do.",
                    f"{name} began to cry. {He} was very {bad}.",
                    f"{He} felt {bad} and sat down.",
                ]
            )
        )
    s.append(
        pick(
            [
                f'"{helper_call}, can you help me?" asked {name}.',
                f'"{helper_call}, my {thing} is gone!" cried {name}.',
                f'"Help, {helper_call}!" called {name}.',
                f"{name} ran to {helper_said} and asked for help.",
            ]
        )
    )
    s.append(
        pick(
            [
                f'"Don\'t worry, I will help you," said {helper_said}.',
                f'"I know what to do," said {helper_said}.',
                f'"Let me try," said {helper_said}.',
            ]
        )
    )
    s.append(f"{Helper} {fix}.")
    s.append(
        pick(
            [
                f"{name} got the {color} {thing} back and felt {good}.",
                f"Now {name} had the {color} {thing} again. {He} was so {good}!",
                f"{name} held the {color} {thing} tight and felt {good}.",
            ]
        )
    )
    s.append(
        pick([f'"Thank you, {helper_call}!" said {name}.', f"{name} gave {helper_said} a big hug."])
    )
    if rng.random() < 0.3:
        food = pick(FOODS)
        s.append(
            f"Later, they sat down to eat {food}. {name} shared {his} {food} with {companion}."
        )
    ending = rng.random()
    if ending < 0.35:
        s.append(f"{name} learned that {pick(MORALS)}.")
    elif ending < 0.6 and helper_said == friend:
        s.append(f"From that day on, {name} and {friend} were best friends.")
    elif ending < 0.8:
        s.append(f"Then they went home and {name} put the {thing} on {his} shelf.")
    else:
        s.append(f"That night, {name} went to sleep with the {thing} next to {him}.")
    return " ".join(s)
