"""minidl's benchmarks: ``python -m benchmarks`` runs them all (see ``run.py``).

Not part of the installed package. The scripts import one another by their plain
names (``import harness``), as they do when run alone, so this package only puts
its folder on ``sys.path`` for ``__main__``.
"""
