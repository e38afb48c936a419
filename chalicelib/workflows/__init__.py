"""State machines built from a DR plan, as data (dicts -> JSON), JSONPath only."""
