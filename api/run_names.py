"""Generated run names in MLflow's adjective-noun-number style, for runs created without one."""

from __future__ import annotations

import random

_ADJECTIVES = (  # noqa: SIM905 (a word list reads better as text)
    "agreeable ambitious amazing bold brave bright calm capable caring clean clever colorful "
    "curious daring dazzling eager efficient elegant enchanting fearless fierce funny gentle "
    "glamorous gregarious handsome honest humble industrious intelligent jovial kindly "
    "likeable luminous magnificent merciful nimble orderly painted peaceful polite powerful "
    "receptive resilient righteous rogue secretive serious shivering silent skillful smiling "
    "sneaky spiffy stately suave tasteful thoughtful unequaled upbeat valuable vaunted "
    "victorious vibrant wise worried youthful zealous "
).split()
_ANIMALS = (  # noqa: SIM905 (a word list reads better as text)
    "ant ape asp auk bass bat bear bee bird boar bug calf carp cat chimp cod colt conch cow "
    "crab crane croc crow cub deer doe dog dolphin donkey dove duck eel elk fawn finch fish "
    "flea fly foal fowl fox frog gnat gnu goat goose grouse grub gull hare hawk hen hog "
    "horse hound jay kit kite koi lamb lark loon lynx mare midge mink mole moose moth mouse "
    "mule newt owl ox panda penguin perch pig pug quail ram rat ray robin roo rook seal shad "
    "shark sheep shoat shrew shrike skink skunk sloth slug smelt snail snake snipe sow "
    "sponge squid squirrel stag steed stoat stork swan tern toad trout turtle vole wasp "
    "whale wolf worm wren yak zebra "
).split()


def generated_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_ANIMALS)}-{random.randint(0, 999)}"
