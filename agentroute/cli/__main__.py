"""`python -m agentroute.cli`: the same as the `agentroute` command."""

from agentroute.cli._app import main

main()
