"""A multipart upload read as it arrives: the `file` part goes straight to a file in a folder
the caller removes, the other fields into memory (small), and nothing grows past its limit.
A body announced larger than the limit is refused before it is read; one that grows past it
while it streams is refused as soon as it does; a sender that goes quiet is given up on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from livetranslate.gateway.errors import ApiError, bad_request, too_large

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

FIELD_BYTES = 64 * 1024  # all the fields but the file, together: a prompt, a glossary
MULTIPART_SLACK = 16 * 1024  # boundaries and part headers beside the file, at most
# a refused body is read (and dropped) up to this much more, so that the client, which sends
# its whole request before it reads the answer, gets the answer and not a reset connection
DRAIN_BYTES = 16 * 2**20


class ClientGone(Exception):
    """The client went away while its request was being read."""


@dataclass
class Form:
    """The fields (each name's values, in order) and the file, if one came."""

    fields: dict[str, list[str]] = field(default_factory=dict)
    file: Path | None = None
    filename: str = ""
    size: int = 0  # the file's bytes

    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.fields.get(name)
        return values[-1] if values else default

    def all(self, name: str) -> list[str]:
        return self.fields.get(name, [])


class _Parts:
    """python-multipart's callbacks: one part at a time, the file part written as it comes."""

    def __init__(self, form: Form, folder: Path, limit_bytes: int):
        self.form, self.folder, self.limit = form, folder, limit_bytes
        self.name, self.header_name, self.header_value = "", b"", b""
        self.disposition = b""
        self.value = bytearray()
        self.field_bytes = 0
        self.out: BinaryIO | None = None
        self.is_file = False

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self.begin,
            "on_header_field": lambda data, start, end: self._add("header_name", data[start:end]),
            "on_header_value": lambda data, start, end: self._add("header_value", data[start:end]),
            "on_header_end": self.header_end,
            "on_headers_finished": self.headers_finished,
            "on_part_data": self.data,
            "on_part_end": self.end,
        }

    def _add(self, name: str, data: bytes) -> None:
        setattr(self, name, getattr(self, name) + data)
        if len(self.header_name) + len(self.header_value) > FIELD_BYTES:
            raise bad_request("a part's header is too long", "invalid_multipart")

    def begin(self) -> None:
        self.disposition, self.value, self.is_file = b"", bytearray(), False

    def header_end(self) -> None:
        if self.header_name.strip().lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def headers_finished(self) -> None:
        from python_multipart.multipart import parse_options_header

        _, options = parse_options_header(self.disposition)
        self.name = options.get(b"name", b"").decode("utf-8", "replace")
        self.is_file = self.name == "file"
        if self.is_file:
            if self.form.file is not None:
                raise bad_request("send one file per request", "invalid_multipart", "file")
            self.form.file = self.folder / "upload"
            self.form.filename = options.get(b"filename", b"").decode("utf-8", "replace")
            self.out = open(self.form.file, "wb")  # closed in end(), or close() on every way out

    def data(self, data: bytes, start: int, end: int) -> None:
        if self.is_file:
            assert self.out is not None
            self.form.size += end - start
            if self.form.size > self.limit:
                raise too_large(self.limit)
            self.out.write(data[start:end])
            return
        self.field_bytes += end - start
        if self.field_bytes > FIELD_BYTES:
            raise bad_request(f"the fields beside the file are longer than {FIELD_BYTES // 1024} KB", "invalid_field")
        self.value += data[start:end]

    def end(self) -> None:
        if self.is_file:
            self.close()
        elif self.name:
            self.form.fields.setdefault(self.name, []).append(self.value.decode("utf-8", "replace"))

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


async def read_form(
    headers: Mapping[str, str], receive: Receive, folder: Path, limit_bytes: int, idle_s: float
) -> Form:
    """The request's multipart body, its file in `folder` (the caller removes it). ApiError
    for a body that is not multipart or broken (400), too large (413) or too slow (408); a
    refused body is drained first (`drain`). ClientGone when the client leaves."""
    complete = False

    async def next_message() -> MutableMapping[str, Any]:
        nonlocal complete
        message = await _next(receive, idle_s)
        complete = not message.get("more_body", False)
        return message

    try:
        return await _read(headers, next_message, folder, limit_bytes)
    except ApiError as error:
        if error.status != 408 and not complete:  # the client sends all before it reads: let it hear why
            await drain(receive)
        raise


async def _read(headers: Mapping[str, str], next_message: Receive, folder: Path, limit_bytes: int) -> Form:
    from python_multipart.multipart import MultipartParser, parse_options_header

    kind, options = parse_options_header(headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise bad_request(
            "send the audio as multipart/form-data with the audio in a `file` field", "invalid_content_type", "file"
        )
    announced = headers.get("content-length")
    most = limit_bytes + FIELD_BYTES + MULTIPART_SLACK
    if announced is not None and announced.isdigit() and int(announced) > most:
        raise too_large(limit_bytes)
    form = Form()
    parts = _Parts(form, folder, limit_bytes)
    parser = MultipartParser(boundary, parts.callbacks())
    received = 0
    try:
        while True:
            message = await next_message()
            body = message.get("body", b"")
            received += len(body)
            if received > most:
                raise too_large(limit_bytes)
            if body:
                parser.write(body)
            if not message.get("more_body", False):
                break
        parser.finalize()
    except (ApiError, ClientGone):
        raise
    except Exception as exc:  # python-multipart's errors: a broken body
        raise bad_request(f"the multipart body is broken: {exc}", "invalid_multipart") from None
    finally:
        parts.close()
    return form


async def _next(receive: Receive, idle_s: float) -> MutableMapping[str, Any]:
    try:
        message = await asyncio.wait_for(receive(), idle_s)
    except TimeoutError:
        raise ApiError(
            408, f"the upload stalled: nothing arrived for {idle_s:g} s", code="request_timeout", param="file"
        ) from None
    if message["type"] == "http.disconnect":
        raise ClientGone()
    return message


async def drain(receive: Receive, most_bytes: int = DRAIN_BYTES, idle_s: float = 5.0) -> None:
    """Reads (and drops) what is left of a refused body, up to `most_bytes`."""
    dropped = 0
    try:
        while dropped < most_bytes:
            message = await _next(receive, idle_s)
            dropped += len(message.get("body", b""))
            if not message.get("more_body", False):
                return
    except (ApiError, ClientGone):
        return
