"""The `nvfilter` command line: the group (group.py), its options (options.py), its commands
(commands.py)."""

from nvfilter.cli.commands import main

__all__ = ["main"]
