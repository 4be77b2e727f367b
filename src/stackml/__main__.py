"""``python -m stackml`` runs the CLI."""

from stackml.cli import main

main()
