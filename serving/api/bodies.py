"""Request bodies of the serving routes: read under the size cap, and decompressed when the
client sent them with `Content-Encoding: gzip` or `deflate` (tritonclient's
`request_compression_algorithm`, for one).

The decompressed size is held to the same cap as a plain body (`DATA_UPLOAD_MAX_MEMORY_SIZE`,
MLPLATFORM_MAX_BODY_BYTES): the stream is inflated in steps of at most the room left, so a
"zip bomb" never makes this process hold more than the cap. Beyond it → 413; a corrupt or
truncated stream → 400; any other encoding → 415. Every answer is an ApplicationError, which each
protocol's views turn into its own error shape.
"""

import zlib
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig

from mlplatform.errors import ApplicationError

ENCODINGS = ("gzip", "deflate")
_STEP = 1 << 20  # inflate at most this many bytes per call


def _too_large(cap: int, what: str) -> ApplicationError:
    return ApplicationError(
        f"The {what} exceeds {cap} bytes (MLPLATFORM_MAX_BODY_BYTES); send fewer rows per "
        "request or use a batch job.",
        status_code=HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    )


def request_body(request: Any) -> bytes:
    """The request's body as the view should read it: capped, and decompressed if it says so."""
    cap = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
    try:
        body = request.body
    except RequestDataTooBig:
        raise _too_large(cap, "body") from None
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding in ("", "identity"):
        return bytes(body)
    if encoding not in ENCODINGS:
        raise ApplicationError(
            f"Content-Encoding {encoding[:40]!r} is not supported: send gzip, deflate or an "
            "uncompressed body.",
            status_code=HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        )
    return decompress(bytes(body), encoding, cap=cap)


def _is_zlib_header(data: bytes) -> bool:
    # RFC 1950: the compression method is 8 and the first two bytes are a multiple of 31.
    return len(data) >= 2 and data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0


def decompress(data: bytes, encoding: str, *, cap: int) -> bytes:
    """`data` inflated (gzip: one or more members; deflate: a zlib stream, or a raw deflate
    stream as some clients send), never holding more than `cap` bytes of output."""
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    else:
        wbits = zlib.MAX_WBITS if _is_zlib_header(data) else -zlib.MAX_WBITS
    out = bytearray()
    pending = data
    try:
        while True:
            inflater = zlib.decompressobj(wbits)
            while not inflater.eof:
                room = cap + 1 - len(out)  # at least 1: the output never exceeds the cap here
                chunk = inflater.decompress(pending, min(room, _STEP))
                out += chunk
                if len(out) > cap:
                    raise _too_large(cap, "decompressed body")
                pending = inflater.unconsumed_tail
                if not chunk and not pending:
                    break  # the input is used up and the stream has not ended
            if not inflater.eof:
                raise ApplicationError(
                    f"The {encoding} body is truncated: the compressed stream does not end."
                )
            pending = inflater.unused_data
            if not pending:
                return bytes(out)
            if encoding != "gzip":
                raise ApplicationError(f"The {encoding} body has data after the stream's end.")
            # another gzip member follows (`cat a.gz b.gz`): inflate it too
    except zlib.error as exc:
        raise ApplicationError(f"The body is not valid {encoding} data: {exc}.") from None
