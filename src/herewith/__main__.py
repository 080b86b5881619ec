"""``python -m herewith`` runs the ``herewith`` command."""

from herewith.cli import app

# Guarded: the speech engine's worker processes are started with multiprocessing's "spawn", which imports
# this module again (as ``__mp_main__``) in each worker; unguarded, every worker would run the command too.
if __name__ == "__main__":
    app()
