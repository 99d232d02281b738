"""``python -m xmbench``: the same command line as the ``xmbench`` script (the code lives in :mod:`harness`)."""

from harness import __version__

__all__ = ["__version__"]
