"""The application logic of the larger subcommands, one module each; harness/cli.py parses the
arguments and calls them."""
