"""The seed guide's code blocks (docs/seed-guide-parallel-execution.txt), one module per block, ported
with only the import changed. What the guide leaves undefined (``email_service``, ``api1``,
``ProcessStep`` ...) comes from :mod:`engine.guide.fakes`."""
