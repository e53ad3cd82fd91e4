"""Reading raw request bodies with a size limit (for YAML/JSON documents and uploads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.errors import PayloadTooLarge


async def read_limited_body(request: Request) -> bytes:
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body is larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


RawBody = Annotated[bytes, Depends(read_limited_body)]
