"""`python -m nvfilter` runs the command line."""

from nvfilter.cli import main

main()
