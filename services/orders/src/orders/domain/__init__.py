"""Orders' rules, in plain Python: no I/O, no HTTP, no framework."""
