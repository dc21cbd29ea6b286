"""Occasions and activities a shopper buys for: the shopper's language rather than
the catalog's, so the assistant knows them in every shop (the vocabulary adds the
catalog's own `activity` values). Canonical value: the words that name it."""

# Events a gift is for: ideas are the shop's picks, whatever the event.
GIFT_EVENTS: dict[str, list[str]] = {
    "birthday": ["birthday", "bday", "b-day"],
    "christmas": ["christmas", "xmas", "x-mas", "secret santa", "holidays"],
    "anniversary": ["anniversary"],
    "valentine's day": [
        "valentine's day", "valentines day", "valentine's", "valentines",
    ],
    "mother's day": ["mother's day", "mothers day", "mother's-day"],
    "father's day": ["father's day", "fathers day", "father's-day"],
    "graduation": ["graduation", "graduating"],
    "wedding": ["wedding", "honeymoon"],
    "housewarming": ["housewarming", "house warming"],
}  # fmt: skip

# What a person does: ideas are products for it.
ACTIVITIES: dict[str, list[str]] = {
    "running": ["running", "jogging", "marathon", "trail running", "5k", "10k"],
    "yoga": ["yoga", "pilates"],
    "gym": [
        "gym", "workout", "workouts", "training", "fitness", "crossfit",
        "weightlifting",
    ],
    "hiking": ["hiking", "trekking", "hike", "hikes", "backpacking"],
    "cycling": ["cycling", "biking", "bike rides"],
    "travel": ["travel", "travelling", "traveling", "trip", "vacation", "holiday"],
    "school": ["school", "college", "university"],
    "winter": ["winter"],
    "summer": ["summer"],
}  # fmt: skip

OCCASIONS = {**GIFT_EVENTS, **ACTIVITIES}
