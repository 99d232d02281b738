"""xmbench: a benchmark harness that checks cross-modal BERT claims against fair baselines.

The package is imported by the CLI before any heavy dependency: keep this module free of torch imports.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
