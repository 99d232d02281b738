"""Suites: schema, loading with one-line errors, and semantic checks."""

from harness.suite.loader import load_suite
from harness.suite.schema import Suite

__all__ = ["Suite", "load_suite"]
