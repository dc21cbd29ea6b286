"""Where a profile stands: buying stage, and later retention cells and segments."""
