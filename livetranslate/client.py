"""Streaming gRPC client for `pipeline`: used by the CLI, clients/ and the dashboard."""

from __future__ import annotations

import queue
import random
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from livetranslate import protocol as P
from livetranslate.protocol import Event, EventKind, SessionOptions

DEFAULT_URL = "localhost:8001"


class ClientError(RuntimeError):
    """A problem the user can act on; the message says what and how."""


def _plain(exc: Exception) -> str:
    """A tritonclient exception as one readable line, without gRPC status dumps."""
    message = getattr(exc, "message", None)
    message = message() if callable(message) else (message or str(exc))
    return str(message).replace("[StatusCode.UNAVAILABLE] ", "").strip()


@dataclass
class StreamStats:
    chunks_sent: int = 0
    audio_s: float = 0.0
    started: float = 0.0
    finished: float = 0.0


class PipelineClient:
    def __init__(self, url: str = DEFAULT_URL, timeout_s: float = 10.0):
        import tritonclient.grpc as grpcclient

        self.url = url
        self._grpc = grpcclient
        try:
            self.client = grpcclient.InferenceServerClient(url=url)
            live = self.client.is_server_live(client_timeout=timeout_s)
            ready = live and self.client.is_model_ready(P.PIPELINE, client_timeout=timeout_s)
        except Exception as exc:
            raise ClientError(
                f"cannot reach the livetranslate server at {url}: {_plain(exc)}. "
                f"Is it running? Start it with `livetranslate serve`."
            ) from None
        if not ready:
            raise ClientError(f"the server at {url} is up but the `{P.PIPELINE}` model is not ready")

    def close(self) -> None:
        self.client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _inputs(self, audio: np.ndarray, options: SessionOptions | None):
        tensors = {P.AUDIO: np.ascontiguousarray(audio, dtype=np.int16)}
        if options is not None:
            tensors.update(options.to_tensors())
        inputs = []
        for name, value in tensors.items():
            dtype = "BYTES" if value.dtype == np.object_ else self._grpc.np_to_triton_dtype(value.dtype)
            tensor = self._grpc.InferInput(name, list(value.shape), dtype)
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        return inputs

    def stream(
        self,
        chunks: Iterable[np.ndarray],
        options: SessionOptions,
        *,
        realtime: bool = False,
        stats: StreamStats | None = None,
        idle_timeout_s: float = 120.0,
    ) -> Iterator[Event]:
        """Sends int16 chunks at `options.sample_rate` on one gRPC stream and yields events
        as they arrive, ending with the `end` event. Raises ClientError on a Triton error."""
        stats = stats or StreamStats()
        events: queue.Queue = queue.Queue()
        sequence_id = random.randint(1, 2**63 - 1)

        def callback(result, error):
            if error is not None:
                events.put(ClientError(_plain(error)))
            else:
                events.put(Event.from_tensors(result.as_numpy))

        sent_all = threading.Event()
        send_error: list[Exception] = []

        def send():
            try:
                stats.started = time.monotonic()
                first = True
                for chunk in chunks:
                    if realtime:  # pace: never ahead of the wall clock
                        ahead = stats.started + stats.audio_s - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
                    self.client.async_stream_infer(
                        P.PIPELINE, self._inputs(chunk, options if first else None),
                        sequence_id=sequence_id, sequence_start=first, sequence_end=False,
                    )
                    first = False
                    stats.chunks_sent += 1
                    stats.audio_s += len(chunk) / options.sample_rate
                self.client.async_stream_infer(
                    P.PIPELINE, self._inputs(np.zeros(0, np.int16), options if first else None),
                    sequence_id=sequence_id, sequence_start=first, sequence_end=True,
                )
            except Exception as exc:  # surfaced to the reader below
                send_error.append(exc)
                events.put(ClientError(f"sending audio failed: {_plain(exc)}"))
            finally:
                sent_all.set()

        self.client.start_stream(callback=callback)
        sender = threading.Thread(target=send, name="livetranslate-send", daemon=True)
        sender.start()
        try:
            while True:
                try:
                    item = events.get(timeout=idle_timeout_s)
                except queue.Empty:
                    raise ClientError(f"no answer from the server for {idle_timeout_s:.0f} s") from None
                if isinstance(item, Exception):
                    raise item
                yield item
                if item.kind == EventKind.END:
                    stats.finished = time.monotonic()
                    return
        finally:
            self.client.stop_stream(cancel_requests=not sent_all.is_set())
