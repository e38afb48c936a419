"""Pydantic models for every boundary: DR plans, alarm events, ledger records, task inputs and outputs."""
