"""`python -m pipeline.cli`: the `pipeline` command."""

from pipeline.cli.app import main

main()
