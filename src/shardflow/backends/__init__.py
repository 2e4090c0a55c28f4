"""Backends that host the shard runner somewhere other than local worker processes.

Each one provides a pool with the interface of :class:`shardflow.batch.backend.Pool` and is
imported only when a run chooses it (``batch.backend`` names it by reference), so its heavy
dependency is an optional extra.
"""
