"""L2: throttling and retry policies (pure policy, no I/O)."""
