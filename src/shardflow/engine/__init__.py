"""L4: the instance interpreter and the in-process LocalExecutionEngine."""
