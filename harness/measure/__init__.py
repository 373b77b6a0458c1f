"""Layer: measure. The runner and its child processes, the instruments around the timed call,
the machine-wide lock, and the commands that measure something other than a sweep."""
