"""Built-in example workflows (the seed guide's), with near-instant fake services so a batch of
them measures the engine, not sleeps. Each module exposes ``workflow``."""
