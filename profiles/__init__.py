"""Profiles: one record per person, their identities and the events on their
timeline."""
