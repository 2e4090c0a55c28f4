"""``shardflow bench``: built-in workloads, the hand-written baseline they are measured
against, and the runner that reports throughput, latency and memory."""
