"""Pydantic models for every boundary Lifeboat has: DR plans, events, ledger records, task inputs and outputs."""
