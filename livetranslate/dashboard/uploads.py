"""Uploads: an audio file streamed to the server a block at a time, removed when done."""

from __future__ import annotations

import atexit
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np

from livetranslate import settings
from livetranslate.languages import NAMES
from livetranslate.protocol import (
    AUTO_LANGUAGE,
    DEFAULT_SOURCE_LANGUAGE,
    DEFAULT_TARGET_LANGUAGE,
    SAMPLE_RATE_HZ,
    SessionOptions,
)

MAX_UPLOAD_ENV = "LIVETRANSLATE_DASHBOARD_MAX_UPLOAD_MB"


DEFAULT_MAX_UPLOAD_MB = settings.VARIABLES[MAX_UPLOAD_ENV].default


def max_upload_mb(environ: Mapping[str, str] | None = None) -> int:
    try:
        return max(1, int(settings.get(MAX_UPLOAD_ENV, environ)))
    except ValueError:
        return DEFAULT_MAX_UPLOAD_MB


# --- the upload form: the session's name and languages ------------------------------------
# what the form offers: every language Whisper hears, by name; the spoken one may be detected
TARGET_LANGUAGES = tuple(sorted(NAMES, key=NAMES.__getitem__))
SPOKEN_LANGUAGES = (AUTO_LANGUAGE, *TARGET_LANGUAGES)
DEFAULT_SPOKEN, DEFAULT_TARGET = DEFAULT_SOURCE_LANGUAGE, DEFAULT_TARGET_LANGUAGE  # as `stream`'s


def language_label(code: str) -> str:
    """How the form shows a language: `German (de)`; auto: detect it."""
    return "Detect it (auto)" if code == AUTO_LANGUAGE else f"{NAMES.get(code, code)} ({code})"


def upload_session(name: str, spoken: str, target: str, translate: bool = True) -> SessionOptions:
    """What the upload form asks the server for: the session NAME, spoken in SPOKEN (a code,
    or auto to detect it) and translated into TARGET, unless not `translate`. ProtocolError
    (in plain words) for a name or a language the server would refuse."""
    return SessionOptions(
        (name or "").strip(),
        UploadedAudio.rate,
        source_language=spoken or DEFAULT_SPOKEN,
        target_language=target or DEFAULT_TARGET,
        translate=translate,
    )


# --- uploads -----------------------------------------------------------------------------
class UploadError(ValueError):
    """An upload that cannot be streamed: too large, or not audio."""


_open_uploads: set[Path] = set()  # folders of uploads still streaming, removed at exit at the latest


@atexit.register
def _remove_open_uploads() -> None:
    for folder in list(_open_uploads):
        shutil.rmtree(folder, ignore_errors=True)


UPLOAD_FORMATS = "Upload a recording such as wav, mp3, m4a, ogg, flac or webm."


def _has_sound(path: Path) -> bool:
    """Whether the file's first audio track decodes to at least 10 ms of audio (a header
    alone, or a track ffmpeg cannot decode, would make a session with nothing in it)."""
    import av

    heard = 0.0
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(audio=0):
                heard += frame.samples / (frame.sample_rate or SAMPLE_RATE_HZ)
                if heard >= 0.01:
                    return True
    except Exception:
        pass
    return False


class UploadedAudio:
    """An uploaded file on its way to the server. It lies in a private temporary folder only
    while it streams; it is decoded a packet at a time (never whole in memory), resampled to
    16 kHz mono int16, and paced in real time like a live source. `close()` (or leaving the
    `with` block) removes the folder; it is safe from any thread and more than once."""

    rate, live, overflows = SAMPLE_RATE_HZ, False, 0

    def __init__(
        self,
        upload: BinaryIO,
        suffix: str = "",
        *,
        max_bytes: int,
        chunk_ms: int = 100,
        realtime: bool = True,
        tmp_dir: str | Path | None = None,
    ):
        import av

        self.chunk, self.realtime = self.rate * chunk_ms // 1000, realtime
        self._lock = threading.Lock()  # one decode step at a time; close() waits for it
        self._container = None
        self.folder = Path(tempfile.mkdtemp(prefix="livetranslate-upload-", dir=tmp_dir))
        _open_uploads.add(self.folder)
        try:
            path = self.folder / ("upload" + (suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", suffix) else ""))
            try:
                with open(path, "wb") as out:
                    copied = 0
                    while block := upload.read(1 << 20):
                        copied += len(block)
                        if copied > max_bytes:
                            raise UploadError(f"the file is larger than the limit of {max_bytes / 2**20:.0f} MB")
                        out.write(block)
            except OSError as exc:  # the temporary folder is full, or gone
                raise UploadError(f"cannot keep the upload while it streams: {exc.strerror or exc}") from None
            # messages name the file's kind, never its temporary path (PyAV's errors carry it)
            try:
                self._container = av.open(str(path))
            except Exception:
                raise UploadError(f"not an audio file: ffmpeg cannot read it. {UPLOAD_FORMATS}") from None
            if not self._container.streams.audio:
                raise UploadError(f"the file has no sound (no audio track). {UPLOAD_FORMATS}")
            if not _has_sound(path):
                raise UploadError(f"the file's audio track holds no sound ffmpeg can decode. {UPLOAD_FORMATS}")
            duration = self._container.duration  # in av.time_base units, when the file says
            self.seconds = duration / av.time_base if duration else None
        except BaseException:
            self.close()
            raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        with self._lock:
            if self._container is not None:
                self._container.close()
                self._container = None
        shutil.rmtree(self.folder, ignore_errors=True)
        _open_uploads.discard(self.folder)

    def __iter__(self) -> Iterator[np.ndarray]:
        started, sent = time.monotonic(), 0.0
        for part in self._decoded():
            ahead = started + sent - time.monotonic()
            if self.realtime and ahead > 0:
                time.sleep(ahead)
            yield part
            sent += len(part) / self.rate

    def _decoded(self) -> Iterator[np.ndarray]:
        import av

        with self._lock:
            if self._container is None:
                return
            stream = self._container.streams.audio[0]
            packets = self._container.demux(stream)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=self.rate)
        pending: list[np.ndarray] = []
        have = 0
        while True:
            with self._lock:
                if self._container is None:
                    return  # closed while streaming: stop quietly
                try:
                    packet = next(packets, None)
                except Exception:  # damaged past this point: end with what was read
                    packet = None
                frames = []
                try:
                    for frame in packet.decode() if packet is not None else ():
                        frames.extend(resampler.resample(frame))
                except av.FFmpegError:
                    pass  # a damaged packet: skip it, keep the rest of the file
                if packet is None:
                    frames.extend(resampler.resample(None))  # what the resampler still holds
            for frame in frames:
                pcm = frame.to_ndarray().reshape(-1).astype(np.int16, copy=False)
                pending.append(pcm)
                have += len(pcm)
            while have >= self.chunk or (packet is None and have):
                joined = np.concatenate(pending)
                part, rest = joined[: self.chunk], joined[self.chunk :]
                pending, have = ([rest] if len(rest) else []), len(rest)
                yield part
            if packet is None:
                return
