"""Subcommands of `tinygrad-cv`: each module has add_parser(subparsers) and run(args) -> int."""
