"""``python -m claude_force.cli``."""

from claude_force.cli.app import main

main()
