"""Audio sources for the capture client: files, stdin, a microphone (PortAudio via
sounddevice), a PulseAudio/PipeWire source (parec), and the PulseAudio null-sink helper.

Every source yields mono int16 chunks at its own `rate`; the server resamples.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from livetranslate.audio import AudioFileError, chunks, read_audio

LIVE_RATE = 16_000


class SourceError(RuntimeError):
    pass


@dataclass
class Source:
    name: str  # default session name
    rate: int
    live: bool  # a live source drops audio it cannot send; a file waits
    _chunks: Iterator[np.ndarray]
    _process: subprocess.Popen | None = None
    seconds: float | None = None  # a file's length (live sources have none)
    overflows: int = 0  # times the device dropped audio before we could read it (PortAudio)

    def __iter__(self) -> Iterator[np.ndarray]:
        return self._chunks

    def close(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(3)
            except subprocess.TimeoutExpired:
                self._process.kill()


def _paced(parts: Iterator[np.ndarray], rate: int) -> Iterator[np.ndarray]:
    """A file played in real time, like a live source."""
    started, sent = time.monotonic(), 0.0
    for part in parts:
        ahead = started + sent - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        yield part
        sent += len(part) / rate


def _pcm_pipe(stream, size: int) -> Iterator[np.ndarray]:
    carry = b""
    while True:
        data = stream.read(size)
        if not data:
            return
        data, carry = carry + data, b""
        if len(data) % 2:
            data, carry = data[:-1], data[-1:]
        if data:
            yield np.frombuffer(data, dtype="<i2").astype(np.int16)


def open_source(spec: str, *, chunk_ms: int = 100, rate: int = LIVE_RATE, realtime: bool = False) -> Source:
    """`-` (raw PCM16 on stdin at `rate`), `mic[:DEVICE]`, `pulse:SOURCE`, or a file path."""
    if spec == "-":
        return Source("stdin", rate, True, _pcm_pipe(sys.stdin.buffer, max(2, rate * chunk_ms // 1000 * 2)))
    if spec == "mic" or spec.startswith("mic:"):
        return _microphone(spec[4:] or None, rate, chunk_ms)
    if spec.startswith("pulse:"):
        return _pulse(spec[6:], rate, chunk_ms)
    try:
        pcm, file_rate = read_audio(spec)
    except AudioFileError as exc:
        raise SourceError(str(exc)) from None
    parts = chunks(pcm, max(1, file_rate * chunk_ms // 1000))
    return Source(
        Path(spec).stem, file_rate, False, _paced(parts, file_rate) if realtime else parts, seconds=len(pcm) / file_rate
    )


def _pulse(device: str, rate: int, chunk_ms: int) -> Source:
    if not device:
        raise SourceError("pulse: needs a source name, e.g. pulse:meeting_sink.monitor (see `livetranslate devices`)")
    if shutil.which("parec") is None:
        raise SourceError("parec is not installed (apt-get install pulseaudio-utils)")
    process = subprocess.Popen(
        [
            "parec",
            f"--device={device}",
            "--format=s16le",
            f"--rate={rate}",
            "--channels=1",
            "--raw",
            f"--latency-msec={chunk_ms}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    time.sleep(0.2)
    if process.poll() is not None:
        assert process.stderr is not None  # stderr=PIPE
        error = process.stderr.read().decode(errors="replace").strip()
        raise SourceError(f"cannot record from PulseAudio source {device!r}: {error or 'parec exited'}")
    return Source(device, rate, True, _pcm_pipe(process.stdout, max(2, rate * chunk_ms // 1000 * 2)), process)


def _microphone(device: str | None, rate: int, chunk_ms: int) -> Source:
    try:
        import sounddevice as sd
    except OSError as exc:  # PortAudio missing
        raise SourceError(f"microphone capture needs PortAudio (apt-get install libportaudio2): {exc}") from None
    dev = int(device) if device and device.isdigit() else device
    try:
        stream = sd.RawInputStream(
            samplerate=rate, channels=1, dtype="int16", device=dev, blocksize=rate * chunk_ms // 1000
        )
        stream.start()
    except Exception as exc:
        raise SourceError(f"cannot open microphone {device or '(default)'}: {exc}") from None

    def read() -> Iterator[np.ndarray]:
        try:
            while True:
                data, overflowed = stream.read(rate * chunk_ms // 1000)
                source.overflows += bool(overflowed)  # reported by the capture loop
                yield np.frombuffer(bytes(data), dtype="<i2").astype(np.int16)
        finally:
            stream.stop()
            stream.close()

    source = Source(f"mic-{device or 'default'}", rate, True, read())
    return source


def list_devices() -> list[str]:
    lines = []
    try:
        import sounddevice as sd

        for i, dev in enumerate(sd.query_devices()):
            if dev["max_input_channels"] > 0:
                lines.append(
                    f"mic:{i:<3} {dev['name']} ({dev['max_input_channels']} ch, {int(dev['default_samplerate'])} Hz)"
                )
    except Exception as exc:  # no PortAudio, no devices
        lines.append(f"(no PortAudio devices: {exc})")
    if shutil.which("pactl"):
        out = subprocess.run(["pactl", "list", "short", "sources"], capture_output=True, text=True)
        if out.returncode == 0:
            lines += [f"pulse:{line.split()[1]}" for line in out.stdout.splitlines() if line.strip()]
        else:
            lines.append(f"(no PulseAudio: {out.stderr.strip()})")
    return lines


# --- the virtual sink a meeting app plays into --------------------------------------------
def _pactl(*args: str) -> str:
    if shutil.which("pactl") is None:
        raise SourceError("pactl is not installed (apt-get install pulseaudio-utils)")
    out = subprocess.run(["pactl", *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SourceError(f"pactl {' '.join(args)}: {out.stderr.strip() or 'failed'}")
    return out.stdout.strip()


def sink_create(name: str) -> str:
    """A null sink NAME: apps play into it, `pulse:NAME.monitor` captures it."""
    sinks = _pactl("list", "short", "sinks").splitlines()
    if any(line.split()[1] == name for line in sinks if line.strip()):
        return f"sink {name} already exists; capture it with: livetranslate stream pulse:{name}.monitor"
    module = _pactl(
        "load-module", "module-null-sink", f"sink_name={name}", f"sink_properties=device.description={name}"
    )
    return (
        f"created sink {name} (module {module}).\n"
        f"Route the meeting app's output to it: in pavucontrol (Playback tab) pick '{name}', or\n"
        f"  pactl move-sink-input <stream-id> {name}   (ids from: pactl list short sink-inputs)\n"
        f"Then capture it:  livetranslate stream pulse:{name}.monitor\n"
        f"To still hear the meeting: pactl load-module module-loopback source={name}.monitor"
    )


def sink_remove(name: str) -> str:
    modules = _pactl("list", "short", "modules").splitlines()
    ids = [line.split()[0] for line in modules if "module-null-sink" in line and f"sink_name={name}" in line]
    if not ids:
        raise SourceError(f"no null sink named {name}")
    for module in ids:
        _pactl("unload-module", module)
    return f"removed sink {name}"
