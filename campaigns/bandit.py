"""Which variant a profile sees: Thompson sampling over Beta posteriors.

Each variant's reward rate is a Beta(1 + rewarded, 1 + impressions - rewarded)
belief, where an impression is rewarded when it earned a click or an order (an
email read and acted on in the shop, with no click, counts), from the campaign's
stored impressions and outcomes in the person's context (device, part of the day,
weather band), shrunk towards the variant's overall rate so that a context seen
rarely borrows from the rest. A draw from every belief picks the highest: a
variant that earns more is drawn high more often, and one with few impressions
still gets tried while its belief is wide.
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Arm:
    variant: str
    # Fractional when a context's counts are shrunk towards the variant's overall
    # rate (``in_context``).
    impressions: float = 0
    # Impressions that earned a click or an order.
    rewarded: float = 0


# How many impressions the overall rate counts for in a context's belief: a
# context with few impressions of its own follows the overall rate, and one with
# many follows its own.
PRIOR_WEIGHT = 10.0


def in_context(overall: Arm, here: Arm, weight: float = PRIOR_WEIGHT) -> Arm:
    """The variant's belief in one context: its impressions and rewards there, plus
    ``weight`` impressions at its overall reward rate."""
    rate = (overall.rewarded + 1) / (overall.impressions + 2)
    return Arm(
        overall.variant, here.impressions + weight, here.rewarded + weight * rate
    )


def choose(arms: list[Arm], rng: random.Random) -> str:
    """The variant to show; ``rng`` is seeded in tests."""
    if not arms:
        raise ValueError("a campaign has at least one variant; got none")
    draws = [
        (
            rng.betavariate(1 + a.rewarded, 1 + max(a.impressions - a.rewarded, 0)),
            a.variant,
        )
        for a in arms
    ]
    return max(draws)[1]
