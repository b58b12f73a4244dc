"""mmtok test suite (CPU, tiny models)."""
