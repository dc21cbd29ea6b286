"""Custom actions, one module per capability; rasa-sdk finds them by import."""

from assistant.actions.search import ActionSearchProducts

__all__ = ["ActionSearchProducts"]
