"""Shipped model families, registered exactly like user models.

Importing this package registers: ``timm`` (image-only), ``bert`` (text-only), ``dual`` (CLIP-style dual encoder)
and ``xbert`` (the cross-modal BERT family with single-stream, cross-attention, sum and concat fusion).
"""

from baselines import crossmodal, dual, text, vision  # noqa: F401  (registration side effects)
