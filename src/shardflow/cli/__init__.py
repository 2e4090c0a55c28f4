"""L6: the ``shardflow`` command line (thin: parse, load config, call the library)."""
