"""What an attacker holding a client key (or sitting on loopback) throws at a server: the
loops the abuse test and bench_abuse.py run beside live speech.

- long `llm` prompts and long `whisper` requests sent straight to the internal models;
- one huge AUDIO tensor to `pipeline` (or, with `huge_every_s`, one after another);
- more idle speaker streams than the server takes (START, then nothing);
- 1000 subscribes to session names that do not exist;
- with `churn`: streams opened and dropped in a tight loop (START, then the connection cut);
- with `stuck_viewer_of`: a viewer of a real session that never reads what it is sent.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import tritonclient.grpc as grpcclient

from livetranslate import protocol as P
from livetranslate.client.connection import stop_stream
from livetranslate.protocol import Event, EventKind, SessionOptions


def tensor(name: str, value: np.ndarray):
    dtype = "BYTES" if value.dtype == np.object_ else grpcclient.np_to_triton_dtype(value.dtype)
    t = grpcclient.InferInput(name, list(value.shape), dtype)
    t.set_data_from_numpy(value)
    return t


def text(value: str, batch: bool = False) -> np.ndarray:
    array = np.array([value.encode()], dtype=np.object_)
    return array[None, :] if batch else array


@dataclass
class Tally:
    """What each attack got back: answers by outcome."""

    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, attack: str, outcome: str) -> None:
        with self.lock:
            counts = self.outcomes.setdefault(attack, {})
            counts[outcome] = counts.get(outcome, 0) + 1


def _outcome(message: str) -> str:
    for needle, name in (
        ("internal to the server", "refused: internal"),
        ("server full", "refused: full"),
        ("longer than", "refused: too long"),
        ("no session named", "refused: unknown session"),
        ("no audio for", "closed: no audio"),
        ("needs a client key", "refused: no key"),
    ):
        if needle in message:
            return name
    return f"other: {message[:120]}"


class Attack:
    """Runs every attack in its own thread until stop(); idle streams are ended on stop."""

    def __init__(
        self,
        url: str,
        idle_streams: int,
        subscribes: int = 1000,
        huge_samples: int = 32_000_000,
        headers: dict | None = None,
        huge_every_s: float = 0.0,
        churn: bool = False,
        stuck_viewer_of: str = "",
    ):
        self.url, self.idle_streams, self.subscribes, self.huge_samples = url, idle_streams, subscribes, huge_samples
        self.headers = headers
        self.huge_every_s, self.churn, self.stuck_viewer_of = huge_every_s, churn, stuck_viewer_of
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.idle_admitted = threading.Event()  # the idle streams are all open

    def start(self) -> Attack:
        targets = [self._llm_loop, self._whisper_loop, self._huge, self._idle, self._subscribes]
        targets += [self._churn] if self.churn else []
        targets += [self._stuck_viewer] if self.stuck_viewer_of else []
        for target in targets:
            thread = threading.Thread(target=target, name=f"attack-{target.__name__}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout_s: float = 120.0) -> Tally:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)
        return self.tally

    def _client(self):
        return grpcclient.InferenceServerClient(self.url)

    def _llm_loop(self) -> None:
        prompt = "Write a very long story about a ship. " * 200
        # one client, a stream after another: a client a round would leave a gRPC thread behind
        # each (thousands in a minute, when every call is refused at once)
        client = self._client()
        while not self._stop.is_set():
            answers: queue.Queue = queue.Queue()
            client.start_stream(callback=lambda result, error: answers.put(error or result), headers=self.headers)
            try:
                client.async_stream_infer(
                    P.LLM,
                    [
                        tensor(P.TEXT_INPUT, text(prompt, batch=True)),
                        tensor(P.MAX_TOKENS, np.array([[1000]], np.int32)),
                    ],
                )
                item = answers.get(timeout=60)
                self.tally.add("llm", _outcome(str(item)) if isinstance(item, Exception) else "answered")
            except queue.Empty:
                self.tally.add("llm", "no answer in 60 s")
            finally:
                stop_stream(client, cancel=True)
        client.close()

    def _whisper_loop(self) -> None:
        audio = np.random.default_rng(0).normal(0, 0.1, (1, 30 * P.SAMPLE_RATE_HZ)).astype(np.float32)
        client = self._client()
        while not self._stop.is_set():
            try:
                client.infer(P.WHISPER, [tensor(P.AUDIO, audio)], headers=self.headers, client_timeout=60)
                self.tally.add("whisper", "answered")
            except Exception as exc:
                self.tally.add("whisper", _outcome(str(exc)))
        client.close()

    def _huge(self) -> None:
        """A request with far more audio than a chunk may carry (64 MB); with `huge_every_s`,
        one after another until stop."""
        while True:
            events = self._stream_once(
                [tensor(P.AUDIO, np.zeros(self.huge_samples, np.int16))]
                + [tensor(k, v) for k, v in SessionOptions("huge", translate=False).to_tensors().items()],
                start=True,
                end=True,
            )
            for event in events:
                self.tally.add(
                    "huge", _outcome(event.text or event.error) if isinstance(event, Event) else _outcome(str(event))
                )
            if not self.huge_every_s or self._stop.wait(self.huge_every_s):
                return

    def _churn(self) -> None:
        """Streams opened and dropped in a tight loop: a START with 0.1 s of audio, then the
        connection cut without an end."""
        audio = np.zeros(1600, np.int16)
        while not self._stop.is_set():
            client, answers = self._client(), queue.Queue()
            client.start_stream(
                callback=lambda result, error: answers.put(error if error else Event.from_tensors(result.as_numpy)),
                headers=self.headers,
            )
            options = SessionOptions(f"churn-{random.random()}", translate=False, partials=False).to_tensors()
            client.async_stream_infer(
                P.PIPELINE,
                [tensor(P.AUDIO, audio)] + [tensor(k, v) for k, v in options.items()],
                sequence_id=random.randint(1, 2**62),
                sequence_start=True,
            )
            try:
                item = answers.get(timeout=0.2)
                self.tally.add(
                    "churn", _outcome(item.error or item.text) if isinstance(item, Event) else _outcome(str(item))
                )
            except queue.Empty:
                self.tally.add("churn", "opened and dropped")
            stop_stream(client, cancel=True)
            client.close()

    def _stuck_viewer(self) -> None:
        """A viewer of a real session whose client never reads: its callback never returns."""
        client, block = self._client(), threading.Event()
        client.start_stream(callback=lambda result, error: block.wait(), headers=self.headers)
        client.async_stream_infer(
            P.PIPELINE,
            [tensor(P.AUDIO, np.zeros(0, np.int16)), tensor(P.SUBSCRIBE, text(self.stuck_viewer_of))],
            sequence_id=random.randint(1, 2**62),
            sequence_start=True,
            sequence_end=True,
        )
        self.tally.add("stuck viewer", "subscribed")
        self._stop.wait()
        block.set()
        stop_stream(client, cancel=True)
        client.close()

    def _stream_once(self, tensors, start: bool, end: bool, timeout_s: float = 120.0) -> list:
        client, answers = self._client(), queue.Queue()
        client.start_stream(
            callback=lambda result, error: answers.put(error if error else Event.from_tensors(result.as_numpy)),
            headers=self.headers,
        )
        try:
            client.async_stream_infer(
                P.PIPELINE, tensors, sequence_id=random.randint(1, 2**62), sequence_start=start, sequence_end=end
            )
            out = [answers.get(timeout=timeout_s)]
            return out
        except queue.Empty:
            return ["no answer"]
        finally:
            stop_stream(client, cancel=True)
            client.close()

    def _idle(self) -> None:
        """Opens `idle_streams` streams with one chunk each and leaves them open until stop."""
        client, answers = self._client(), queue.Queue()
        client.start_stream(
            callback=lambda result, error: answers.put(error if error else Event.from_tensors(result.as_numpy)),
            headers=self.headers,
        )
        ids = [random.randint(1, 2**62) for _ in range(self.idle_streams)]
        audio = np.zeros(1600, np.int16)
        for i, sequence_id in enumerate(ids):
            options = SessionOptions(f"idle-{i}", translate=False, partials=False).to_tensors()
            client.async_stream_infer(
                P.PIPELINE,
                [tensor(P.AUDIO, audio)] + [tensor(k, v) for k, v in options.items()],
                sequence_id=sequence_id,
                sequence_start=True,
            )
        time.sleep(2.0)
        while not answers.empty():
            item = answers.get()
            self.tally.add(
                "idle",
                _outcome(item.error)
                if isinstance(item, Event) and item.error
                else ("refused: other" if isinstance(item, Exception) else "admitted"),
            )
        self.idle_admitted.set()
        self._stop.wait()
        for sequence_id in ids:  # an attacker could leave them; the test must not
            client.async_stream_infer(
                P.PIPELINE, [tensor(P.AUDIO, np.zeros(0, np.int16))], sequence_id=sequence_id, sequence_end=True
            )
        time.sleep(1.0)
        client.stop_stream(cancel_requests=False)
        client.close()

    def _subscribes(self) -> None:
        client, answers = self._client(), queue.Queue()
        client.start_stream(
            callback=lambda result, error: answers.put(error if error else Event.from_tensors(result.as_numpy)),
            headers=self.headers,
        )
        for i in range(self.subscribes):
            if self._stop.is_set():
                break
            client.async_stream_infer(
                P.PIPELINE,
                [tensor(P.AUDIO, np.zeros(0, np.int16)), tensor(P.SUBSCRIBE, text(f"nobody-{i}-{random.random()}"))],
                sequence_id=random.randint(1, 2**62),
                sequence_start=True,
                sequence_end=True,
            )
        deadline = time.monotonic() + 120
        got = 0
        while got < self.subscribes and time.monotonic() < deadline:
            try:
                item = answers.get(timeout=1)
            except queue.Empty:
                continue
            got += 1
            self.tally.add(
                "subscribe",
                _outcome(item.error) if isinstance(item, Event) and item.kind == EventKind.END else _outcome(str(item)),
            )
        stop_stream(client, cancel=True)
        client.close()
