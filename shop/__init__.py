"""The demo storefront: a small shop over the imported catalog, with the tracker and
the chat box, so the platform can be seen working from a browser."""
