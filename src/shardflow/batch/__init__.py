"""L5: the multiprocess batch executor (coordinator, workers, IPC, sources, sinks, arbiter)."""
