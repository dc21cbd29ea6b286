"""Which variant a profile sees: Thompson sampling over Beta posteriors.

Each variant's click rate is a Beta(1 + clicks, 1 + impressions - clicks) belief,
from the campaign's stored impressions and clicks (the reward; conversions are
recorded and reported but are too rare to learn from quickly) in the person's
context (device, part of the day, weather band), shrunk towards the variant's
overall rate so that a context seen rarely borrows from the rest. A draw from every
belief picks the highest: a variant that earns more clicks is drawn high more often,
and one with few impressions still gets tried while its belief is wide.
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    variant: str
    # Fractional when a context's counts are shrunk towards the variant's overall
    # rate (``in_context``).
    impressions: float = 0
    clicks: float = 0


# How many impressions the overall rate counts for in a context's belief: a
# context with few impressions of its own follows the overall rate, and one with
# many follows its own.
PRIOR_WEIGHT = 10.0


def in_context(overall: Arm, here: Arm, weight: float = PRIOR_WEIGHT) -> Arm:
    """The variant's belief in one context: its clicks and impressions there, plus
    ``weight`` impressions at its overall click rate."""
    rate = (overall.clicks + 1) / (overall.impressions + 2)
    return Arm(overall.variant, here.impressions + weight, here.clicks + weight * rate)


def choose(arms: list[Arm], rng: random.Random) -> str:
    """The variant to show; ``rng`` is seeded in tests."""
    if not arms:
        raise ValueError("a campaign has at least one variant; got none")
    draws = [
        (rng.betavariate(1 + a.clicks, 1 + max(a.impressions - a.clicks, 0)), a.variant)
        for a in arms
    ]
    return max(draws)[1]
