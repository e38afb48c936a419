"""Chalice blueprints: thin handlers that parse, delegate to one domain call, and serialise."""
