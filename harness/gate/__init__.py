"""The CI gate: baseline files, ``xmbench check`` and ``xmbench compare`` (see ``docs/ci.md``)."""
