"""Item ids the server derives: from the text, so posting or uploading the same text twice makes
one item, not two (idempotent without a client id)."""

from __future__ import annotations

import hashlib


def text_id(text: str) -> str:
    """A stable id for a text: the same text always gets the same id."""
    return "txt_" + hashlib.sha256(text.encode()).hexdigest()[:32]
