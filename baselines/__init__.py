"""Shipped model families, registered exactly like a user's: through the ``xmbench.models`` entry points in
``pyproject.toml`` (``timm`` image-only, ``bert`` text-only, ``dual`` CLIP-style dual encoder, ``xbert`` the
cross-modal BERT family). Importing this package imports nothing; each family's module is imported only when a suite
names it.
"""
