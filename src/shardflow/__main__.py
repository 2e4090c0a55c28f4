"""``python -m shardflow`` is the ``shardflow`` command."""

from shardflow.cli.main import main

main()
