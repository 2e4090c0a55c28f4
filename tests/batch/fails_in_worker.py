"""A workflow module that imports in the coordinator but not in a worker process."""

import os

from shardflow.examples.notify import build

if "SHARDFLOW_WORKER_SPEC" in os.environ:
    raise ImportError("this module refuses to load in a worker (test)")

workflow = build("fails_in_worker")
