"""The gRPC client library of `pipeline` and `sessions`: used by the CLI, the dashboard and
anyone's program. Its public interface is what this module names:

    connection.py  Connection, ClientError: where the server is (several, for replicas), TLS, keys
    pipeline.py    PipelineClient: one stream (a speaker's audio, a viewer's watch), sessions
    resilient.py   ResilientSession, AudioBuffer: a speaker's session across reconnects
    follow.py      follow: a viewer across reconnects and servers
    actions.py     edit, summarize, rename: correct a line, summarize a session, name a speaker
    capture.py     audio sources: files, stdin, microphones, PulseAudio
"""

from __future__ import annotations

from livetranslate.client.actions import edit, rename, summarize
from livetranslate.client.connection import (
    DEFAULT_URL,
    ClientError,
    Connection,
    normalize_url,
    normalize_urls,
    passing_refusal,
)
from livetranslate.client.follow import follow
from livetranslate.client.pipeline import WINDOW_S, PipelineClient, StreamStats
from livetranslate.client.resilient import AudioBuffer, ResilientSession, level_dbfs

__all__ = [
    "DEFAULT_URL",
    "WINDOW_S",
    "AudioBuffer",
    "ClientError",
    "Connection",
    "PipelineClient",
    "ResilientSession",
    "StreamStats",
    "edit",
    "follow",
    "level_dbfs",
    "normalize_url",
    "normalize_urls",
    "passing_refusal",
    "rename",
    "summarize",
]
