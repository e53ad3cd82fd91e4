"""Reading a raw request body (YAML/JSON documents). `BodyLimitMiddleware` bounds it: the
bytes are counted as they arrive, so this never holds more than RAC_MAX_BODY_BYTES."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request


async def read_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(read_body)]
