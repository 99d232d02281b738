"""Run folders on disk, aggregation into tables, statistics."""
