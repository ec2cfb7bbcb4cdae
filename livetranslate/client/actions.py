"""An organiser's requests on a stored session (livetranslate.actions): correct a line,
summarize the session, name a speaker. Each is one request to `pipeline`, answered with the events the
server stored, then `end`."""

from __future__ import annotations

import queue
import random

import numpy as np

from livetranslate import protocol as P
from livetranslate.actions import SessionAction
from livetranslate.client.connection import ClientError, plain, stop_stream
from livetranslate.client.pipeline import PipelineClient, _read_events
from livetranslate.protocol import Event, EventKind

EDIT_TIMEOUT_S = 120.0  # a correction and its translations
RENAME_TIMEOUT_S = 30.0
SUMMARY_TIMEOUT_S = 1800.0  # a long meeting's summary on a busy CPU


def run_action(client: PipelineClient, action: SessionAction, timeout_s: float) -> list[Event]:
    """The events the server stored for `action` (ERROR events among them: what went half
    wrong); ClientError when it failed as a whole (its `end` says why)."""
    import tritonclient.grpc as grpcclient

    events: queue.Queue = queue.Queue()
    grpc = client.client
    grpc.start_stream(
        callback=lambda result, error: events.put(
            ClientError(plain(error)) if error else Event.from_tensors(result.as_numpy)
        ),
        headers=client.connection.headers,
    )
    audio = grpcclient.InferInput(P.AUDIO, [0], "INT16")
    audio.set_data_from_numpy(np.zeros(0, np.int16))
    tensor = grpcclient.InferInput(P.SESSION_ACTION, [1], "BYTES")
    tensor.set_data_from_numpy(np.array([action.to_json().encode("utf-8")], dtype=np.object_))
    ended = False
    out: list[Event] = []
    try:
        grpc.async_stream_infer(
            P.PIPELINE,
            [audio, tensor],
            sequence_id=random.randint(1, 2**63 - 1),
            sequence_start=True,
            sequence_end=True,
        )
        for event in _read_events(events, timeout_s, (EventKind.END,)):
            if event.kind == EventKind.END:
                ended = True
                if event.error:
                    raise ClientError(event.error)
            else:
                out.append(event)
    finally:
        stop_stream(grpc, cancel=not ended)
    return out


def edit(client: PipelineClient, session: str, segment_id: int, text: str) -> list[Event]:
    """Corrects line `segment_id` of `session`: the `correction` events stored (the corrected
    transcript, then its translations), and ERROR events for translations that failed."""
    return run_action(client, SessionAction("edit", session, segment_id, text), EDIT_TIMEOUT_S)


def summarize(client: PipelineClient, session: str, language: str = "") -> Event:
    """The session's summary in `language` (default: the speaker's target), stored with it."""
    events = run_action(client, SessionAction("summary", session, language=language), SUMMARY_TIMEOUT_S)
    made = [e for e in events if e.kind == EventKind.SUMMARY]
    if not made:
        problems = "; ".join(e.text for e in events if e.kind == EventKind.ERROR)
        raise ClientError(f"the server made no summary{': ' + problems if problems else ''}")
    return made[-1]


def rename(client: PipelineClient, session: str, label: str, name: str) -> Event:
    """Names the speaker `label` (S1, S2, ...) of `session`: the `speaker_name` event stored,
    which its connected viewers got too."""
    events = run_action(client, SessionAction("rename", session, text=name, speaker=label), RENAME_TIMEOUT_S)
    named = [e for e in events if e.kind == EventKind.SPEAKER_NAME]
    if not named:
        raise ClientError("the server stored no name")
    return named[-1]
