"""Brands a shopper may ask for that the shop may not carry.

The catalog says which brands the shop carries (``brand``, ``manufacturer`` or
``vendor``). Shoppers also name brands it does not: the assistant should know those
words as brands too, so that "adidas shorts" gets "we don't carry Adidas" and the
shop's shorts, not shorts that silently pretend to be Adidas. A brand the catalog
carries is taken from the catalog, whatever this list says.

Names that are ordinary words in a shopping chat ("Gap", "Next", "Converse",
"Guess", "Champion", "On") are left out: a dictionary match cannot tell them apart.
Canonical value: the brand's own spelling; terms: what shoppers type.
"""

OTHER_BRANDS: dict[str, list[str]] = {
    "Adidas": ["adidas", "addidas"],
    "Nike": ["nike", "nikes"],
    "Puma": ["puma"],
    "Reebok": ["reebok", "rebok"],
    "Under Armour": ["under armour", "under armor", "underarmour"],
    "New Balance": ["new balance"],
    "Asics": ["asics"],
    "Fila": ["fila"],
    "Umbro": ["umbro"],
    "Saucony": ["saucony"],
    "Hoka": ["hoka", "hoka one one"],
    "Lululemon": ["lululemon", "lulu lemon"],
    "Gymshark": ["gymshark", "gym shark"],
    "Patagonia": ["patagonia"],
    "The North Face": ["the north face", "north face"],
    "Columbia": ["columbia"],
    "Arc'teryx": ["arc'teryx", "arcteryx", "arc teryx"],
    "Salomon": ["salomon"],
    "Mammut": ["mammut"],
    "Helly Hansen": ["helly hansen"],
    "Jack Wolfskin": ["jack wolfskin"],
    "Levi's": ["levi's", "levis", "levi"],
    "Tommy Hilfiger": ["tommy hilfiger", "hilfiger"],
    "Calvin Klein": ["calvin klein"],
    "Ralph Lauren": ["ralph lauren", "polo ralph lauren"],
    "Hugo Boss": ["hugo boss"],
    "Lacoste": ["lacoste"],
    "Zara": ["zara"],
    "H&M": ["h&m"],
    "Uniqlo": ["uniqlo"],
    "Gucci": ["gucci"],
    "Prada": ["prada"],
    "Garmin": ["garmin"],
    "Fitbit": ["fitbit"],
    "Casio": ["casio"],
    "Samsonite": ["samsonite"],
    "Osprey": ["osprey"],
    "Herschel": ["herschel"],
    "Fjällräven": ["fjällräven", "fjallraven", "fjall raven"],
    "Decathlon": ["decathlon"],
    "Quechua": ["quechua"],
    "Mizuno": ["mizuno"],
    "Merrell": ["merrell", "merrel"],
    "Timberland": ["timberland", "timberlands"],
    "Oakley": ["oakley"],
}  # fmt: skip
