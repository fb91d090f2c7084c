"""Fuzz probes (`make fuzz`): schemathesis over the upstream schema, hypothesis on uploads."""
