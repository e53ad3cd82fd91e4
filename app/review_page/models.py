"""Review-page sign-ins kept on the server, so signing out ends the session for good."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, BigIntPK, UTCDateTime, utcnow


class PageSession(Base):
    """One sign-in. The signed cookie holds a random token; this row holds its hash. Sign-out
    deletes the row, so a copy of the cookie stops working at once (a signed cookie alone stays
    valid until it expires, whatever the server does)."""

    __tablename__ = "page_sessions"

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"),
                                        index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
