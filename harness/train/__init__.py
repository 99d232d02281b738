"""Training: precision (AMP), optimiser groups and schedules, the loop, and measurement."""
