"""Campaigns: marketers' YAML files, served to profiles under guards, with results.

Other domains may import ``service`` (``personalise``, ``list_results``) and the
schemas in ``models``."""
