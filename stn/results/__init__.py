"""Results: the record store (atomic write, read, validate, collect into a frame)."""
