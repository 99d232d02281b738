"""Statistics over seeds and test examples: per-example evidence, confidence intervals, paired comparisons, claims.

Nothing here imports torch: reports, the CI gate and leaderboards read run folders and these modules only.
"""
