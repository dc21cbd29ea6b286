"""External data on profiles: location, device, weather and traffic.

Other domains use ``context.service``: ``enrich`` and ``record`` (the worker),
``snapshot``, ``snapshots`` and ``timezone_of`` (segments, campaigns, the
recommender), and ``context.rules`` for the shop's weather boosts.
"""
