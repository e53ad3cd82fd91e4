"""Reading a dataset upload: a multipart body with one file part, parsed as it arrives.

The multipart parser writes the file part to a spooled temporary file (memory up to 1 MiB, then
disk), so an upload never sits in memory. The JSON body limit (RAC_MAX_BODY_BYTES) does not apply
here; uploads have their own, larger limit, which `BodyLimitMiddleware` counts on the bytes
actually received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import FormData, UploadFile

from app.datasets.readers import FORMATS
from app.datasets.service import DatasetFile
from app.errors import InvalidInput, UnsupportedMediaType

MAX_UPLOAD_BYTES = 2 * 1024**3
"""Largest dataset upload, in bytes of request body (read at request time, so tests may lower
it)."""
_MAX_COLUMN_CHARS = 200


def _text_field(form: Any, name: str, *, required: bool) -> str | None:
    value = form.get(name)
    if isinstance(value, UploadFile):
        raise InvalidInput(f"{name} must be a form field, not a file")
    value = (value or "").strip()
    if not value:
        if required:
            raise InvalidInput(f"the form field {name} is required")
        return None
    if len(value) > _MAX_COLUMN_CHARS or "\x00" in value:
        raise InvalidInput(f"{name} must be at most {_MAX_COLUMN_CHARS} characters, without NUL")
    return value


async def open_dataset_form(request: Request) -> tuple[FormData, DatasetFile]:
    """Parse the multipart body (the file part spooled as it arrives); the caller closes the
    form when done with the file. On bad input the form is closed and InvalidInput raised."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("send the dataset as multipart/form-data with a 'file' part "
                                   "and a 'text_column' field")
    # One file and a few short fields; the file part itself has no size cap in the parser.
    form = await request.form(max_files=1, max_fields=10)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise InvalidInput("send the file as a multipart file part named 'file' "
                               "(with a filename)")
        fmt = _text_field(form, "format", required=False)
        if fmt is not None and fmt.lower() not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return form, DatasetFile(file=file.file, filename=file.filename or "upload",
                                 text_column=_text_field(form, "text_column",
                                                         required=True) or "",
                                 id_column=_text_field(form, "id_column", required=False),
                                 format=fmt)
    except BaseException:
        await form.close()
        raise


async def read_dataset_upload(request: Request) -> AsyncIterator[DatasetFile]:
    form, source = await open_dataset_form(request)
    try:
        yield source
    finally:
        await form.close()


DatasetUpload = Annotated[DatasetFile, Depends(read_dataset_upload)]
