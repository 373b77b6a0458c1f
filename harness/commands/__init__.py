"""The subcommands, one module each, named for the command (`report.py` is `augscale report`);
harness/cli.py parses the arguments and calls them. `measuring.py` is the machine-wide lock as
the commands that measure take it."""
