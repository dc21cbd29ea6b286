"""Thompson sampling moves traffic to the variant that earns clicks."""

import random

from campaigns.bandit import Arm, choose


def test_choose_after_simulated_clicks_favours_the_better_variant() -> None:
    rng = random.Random(7)
    rates = {"a": 0.02, "b": 0.10}
    counts = {v: [0, 0] for v in rates}  # impressions, clicks
    late = {"a": 0, "b": 0}
    for round_ in range(3000):
        arms = [Arm(v, *counts[v]) for v in rates]
        variant = choose(arms, rng)
        counts[variant][0] += 1
        counts[variant][1] += rng.random() < rates[variant]
        if round_ >= 2000:
            late[variant] += 1

    assert late["b"] > 0.8 * 1000
    assert counts["a"][0] > 0  # the weaker one was tried, not ignored


def test_choose_without_data_tries_every_variant() -> None:
    rng = random.Random(1)

    chosen = {choose([Arm("a"), Arm("b"), Arm("c")], rng) for _ in range(100)}

    assert chosen == {"a", "b", "c"}
