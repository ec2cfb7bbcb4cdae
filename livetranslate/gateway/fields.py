"""A speech request's fields, checked: OpenAI's (`file`, `model`, `language`, `prompt`,
`response_format`, `temperature`, `timestamp_granularities[]`, `stream`) and the gateway's
own (`target_language`, `session`, `store`, `glossary`). A field that cannot be used is a 400
that names it; `model` may be anything, `prompt` and `temperature` are accepted and not used."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from livetranslate.gateway.errors import bad_request
from livetranslate.gateway.formats import RESPONSE_FORMATS
from livetranslate.gateway.upload import Form
from livetranslate.glossary import NO_GLOSSARY, Glossary, GlossaryError, parse_bytes
from livetranslate.languages import UnknownLanguage, code_for
from livetranslate.protocol import AUTO_LANGUAGE, MAX_SESSION_NAME

TRUE, FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")
GRANULARITIES = ("segment", "word")
DEFAULT_MODEL = "whisper-1"


@dataclass(frozen=True)
class SpeechRequest:
    task: str  # transcribe or translate
    model: str
    language: str  # the spoken language's code, or auto
    target: str  # translate: the language translated into; transcribe: ""
    response_format: str
    stream: bool
    session: str
    glossary: Glossary = NO_GLOSSARY
    words: bool = False  # word timestamps were asked for (verbose_json of a transcription has them)
    store: bool = True  # false: the server keeps nothing of the request's session


def new_session() -> str:
    return f"gateway-{uuid.uuid4().hex[:12]}"


def _flag(form: Form, name: str, default: bool) -> bool:
    value = form.get(name)
    if value is None or not value.strip():
        return default
    if value.strip().lower() in TRUE:
        return True
    if value.strip().lower() in FALSE:
        return False
    raise bad_request(f"{name} must be true or false, got {value!r}", "invalid_value", name)


def _language(value: str | None, name: str, default: str, allow_auto: bool) -> str:
    if value is None or not value.strip():
        return default
    try:
        return code_for(value, allow_auto=allow_auto)
    except UnknownLanguage as exc:
        raise bad_request(str(exc), "unsupported_language", name) from None


def speech_request(form: Form, task: str) -> SpeechRequest:
    """The request's fields, checked (ApiError 400 naming the field that cannot be used)."""
    if form.file is None:
        raise bad_request("no audio: send the audio file in the `file` field", "missing_file", "file")
    if form.size == 0:
        raise bad_request("the audio file is empty", "empty_file", "file")
    fmt = (form.get("response_format") or "json").strip()
    if fmt not in RESPONSE_FORMATS:
        raise bad_request(
            f"response_format {fmt!r} is not supported: use one of {', '.join(RESPONSE_FORMATS)}",
            "unsupported_value",
            "response_format",
        )
    _check_temperature(form.get("temperature"))
    return SpeechRequest(
        task=task,
        model=(form.get("model") or DEFAULT_MODEL).strip() or DEFAULT_MODEL,
        language=_language(form.get("language"), "language", AUTO_LANGUAGE, allow_auto=True),
        target=_target(form, task),
        response_format=fmt,
        stream=_flag(form, "stream", False),
        session=_session(form.get("session")),
        glossary=_glossary(form.get("glossary")),
        words="word" in _granularities(form),
        store=_flag(form, "store", True),
    )


def _target(form: Form, task: str) -> str:
    if task == "translate":
        return _language(form.get("target_language"), "target_language", "en", allow_auto=False)
    if form.get("target_language"):
        raise bad_request(
            "target_language is for /v1/audio/translations: a transcription is in the spoken language",
            "invalid_field",
            "target_language",
        )
    return ""


def _check_temperature(value: str | None) -> None:
    if value is None or not value.strip():
        return
    try:
        ok = 0.0 <= float(value) <= 1.0
    except ValueError:
        ok = False
    if not ok:
        raise bad_request(f"temperature must be a number from 0 to 1, got {value!r}", "invalid_value", "temperature")


def _granularities(form: Form) -> list[str]:
    values = form.all("timestamp_granularities[]") + form.all("timestamp_granularities")
    for value in values:
        if value not in GRANULARITIES:
            raise bad_request(
                f"timestamp_granularities: {value!r} is not one of {', '.join(GRANULARITIES)}",
                "invalid_value",
                "timestamp_granularities",
            )
    return values


def _session(value: str | None) -> str:
    session = (value or "").strip() or new_session()
    if len(session) > MAX_SESSION_NAME or not session.isprintable():
        raise bad_request(
            f"session must be a printable name of 1 to {MAX_SESSION_NAME} characters", "invalid_value", "session"
        )
    return session


def _glossary(value: str | None) -> Glossary:
    if not value:
        return NO_GLOSSARY
    try:
        return parse_bytes(value.encode("utf-8"))
    except GlossaryError as exc:
        raise bad_request(f"glossary: {exc}", "invalid_value", "glossary") from None
