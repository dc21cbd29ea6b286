"""File imports: orders, store purchases and contacts read from shop exports with a
YAML column mapping, and queued as Segment messages like live tracking."""
