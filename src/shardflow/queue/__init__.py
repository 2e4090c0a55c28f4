"""shardflow as the worker fleet of a queue: Redis Streams (``shardflow consume``).

:class:`~shardflow.queue.consumer.Consumer` reads messages of a stream through a consumer
group, runs them on its own worker pool and writes exactly one result per message, atomically
with its acknowledgement; :func:`~shardflow.queue.producer.enqueue` adds messages. The rules it
keeps are in docs/SEMANTICS.md ("Consuming a Redis stream").

Needs the ``shardflow[redis]`` extra (redis-py with asyncio, prometheus-client).
"""
