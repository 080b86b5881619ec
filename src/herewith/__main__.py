"""``python -m herewith`` runs the ``herewith`` command."""

from herewith.cli import app

app()
