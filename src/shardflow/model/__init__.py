"""L2: the workflow model (steps, groups, edges, definitions, validation, plan, registry)."""
