"""The api process: every domain's routes in one FastAPI application."""
