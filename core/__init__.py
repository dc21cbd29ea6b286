"""Shared infrastructure: settings, database, Redis, logging and the error shape."""
