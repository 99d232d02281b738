"""`python -m xmbench` is the same as the `xmbench` console script."""

from harness.cli import main

raise SystemExit(main())
