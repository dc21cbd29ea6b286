"""Which variant a profile sees: Thompson sampling over Beta posteriors.

Each variant's click rate is a Beta(1 + clicks, 1 + impressions - clicks) belief,
from the campaign's stored impressions and clicks (the reward; conversions are
recorded and reported but are too rare to learn from quickly). A draw from every
belief picks the highest: a variant that earns more clicks is drawn high more often,
and one with few impressions still gets tried while its belief is wide.
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    variant: str
    impressions: int = 0
    clicks: int = 0


def choose(arms: list[Arm], rng: random.Random) -> str:
    """The variant to show; ``rng`` is seeded in tests."""
    if not arms:
        raise ValueError("a campaign has at least one variant; got none")
    draws = [
        (rng.betavariate(1 + a.clicks, 1 + max(a.impressions - a.clicks, 0)), a.variant)
        for a in arms
    ]
    return max(draws)[1]
