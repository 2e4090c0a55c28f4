"""Health and Prometheus metrics of a running ``shardflow consume`` or ``shardflow run``
(``--metrics-port``): :class:`~shardflow.metrics.registry.Metrics` holds the figures,
:class:`~shardflow.metrics.server.MetricsServer` serves ``/metrics`` and ``/healthz``.

Needs the ``shardflow[redis]`` extra (``prometheus-client``): it is imported only by the
consumer and, lazily, by ``--metrics-port``, so ``run`` without it never loads it.
"""
