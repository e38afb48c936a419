"""Pure decisions: no I/O, time passed in as a value."""
