"""Use cases: each handler calls one function here, which combines adapters (I/O) with domain decisions."""
