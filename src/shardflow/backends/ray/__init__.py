"""The Ray backend (``shardflow[ray]``): shard actors on a Ray cluster.

Importing this package is choosing the backend: without Ray installed it raises one clear
:class:`~shardflow.errors.ConfigError` (exit 2 on the command line) naming the install command.
"""

from __future__ import annotations

from shardflow.errors import ConfigError

INSTALL = "pip install 'shardflow[ray]'"

try:
    import ray  # noqa: F401  (only to know it is there)
except ImportError:
    raise ConfigError("backend", f"the ray backend needs the ray package; install it with: {INSTALL}") from None
