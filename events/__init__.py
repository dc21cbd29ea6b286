"""Event collection: the Segment-compatible tracking API, the durable queue and the
worker that applies events to profiles."""
