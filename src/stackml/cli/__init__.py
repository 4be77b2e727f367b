"""The ``stackml`` command line. Heavy libraries are imported inside commands so ``--help`` stays fast."""

from stackml.cli.main import app, main

__all__ = ["app", "main"]
