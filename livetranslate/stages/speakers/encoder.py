"""The GE2E speaker encoder (Resemblyzer 0.1.4's VoiceEncoder) in numpy, no torch.

40 mel channels -> a 3-layer LSTM (hidden 256) -> its last hidden state -> linear 256 -> ReLU
-> L2 norm: one embedding per partial utterance of 1.6 s. An utterance's embedding is the mean
of its partials' (one every 1/1.3 s), L2-normalised again. All partials of all utterances given
together run through the LSTM as one batch: the time loop is the cost, not the batch.

The weights: `resemblyzer/pretrained.pt` from the Resemblyzer wheel, assembled by the weights
catalog as `speaker-ge2e` and read by livetranslate.stages.speakers.checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from livetranslate.stages.speakers import frontend
from livetranslate.stages.speakers.checkpoint import CheckpointError, load_checkpoint

WEIGHTS_FILE = "pretrained.pt"
HIDDEN = 256
LAYERS = 3
EMBEDDING = 256


def _gates_ifog(matrix: np.ndarray) -> np.ndarray:
    """torch's gate order (input, forget, cell, output) as (input, forget, output, cell): one
    sigmoid over the first three quarters, one tanh over the last."""
    i, f, g, o = np.split(matrix, 4, axis=0)
    return np.concatenate([i, f, o, g], axis=0)


class SpeakerEncoder:
    def __init__(self, state: dict[str, np.ndarray]) -> None:
        try:
            self.layers = []
            for k in range(LAYERS):
                w_ih = _gates_ifog(state[f"lstm.weight_ih_l{k}"]).astype(np.float32)
                w_hh = _gates_ifog(state[f"lstm.weight_hh_l{k}"]).astype(np.float32)
                bias = _gates_ifog(state[f"lstm.bias_ih_l{k}"] + state[f"lstm.bias_hh_l{k}"]).astype(np.float32)
                self.layers.append((np.ascontiguousarray(w_ih.T), np.ascontiguousarray(w_hh.T), bias))
            self.linear_w = np.ascontiguousarray(state["linear.weight"].T.astype(np.float32))
            self.linear_b = state["linear.bias"].astype(np.float32)
        except KeyError as exc:
            raise CheckpointError(f"the checkpoint lacks {exc}: not a GE2E speaker encoder") from None
        if self.layers[0][0].shape != (frontend.N_MELS, 4 * HIDDEN) or self.linear_w.shape != (HIDDEN, EMBEDDING):
            raise CheckpointError("the checkpoint's shapes are not those of Resemblyzer's encoder")

    @classmethod
    def load(cls, model: Path) -> SpeakerEncoder:
        """From a model folder (the catalog's `speaker-ge2e`) or the checkpoint file itself."""
        model = Path(model)
        checkpoint = load_checkpoint(model / WEIGHTS_FILE if model.is_dir() else model)
        return cls(checkpoint["model_state"] if "model_state" in checkpoint else checkpoint)

    def partial_embeddings(self, mels: np.ndarray) -> np.ndarray:
        """(batch, frames, 40) mel windows -> (batch, 256) L2-normalised embeddings."""
        x = np.asarray(mels, dtype=np.float32)
        batch, steps, _ = x.shape
        h = np.zeros((batch, HIDDEN), np.float32)
        for k, (w_ih, w_hh, bias) in enumerate(self.layers):
            inputs = (x.reshape(batch * steps, -1) @ w_ih + bias).reshape(batch, steps, 4 * HIDDEN)
            h = np.zeros((batch, HIDDEN), np.float32)
            c = np.zeros((batch, HIDDEN), np.float32)
            last = k == LAYERS - 1
            outputs = None if last else np.empty((batch, steps, HIDDEN), np.float32)
            for t in range(steps):
                gates = inputs[:, t] + h @ w_hh
                sig = np.tanh(gates[:, : 3 * HIDDEN] * 0.5) * 0.5 + 0.5  # sigmoid
                c = sig[:, HIDDEN : 2 * HIDDEN] * c + sig[:, :HIDDEN] * np.tanh(gates[:, 3 * HIDDEN :])
                h = sig[:, 2 * HIDDEN :] * np.tanh(c)
                if outputs is not None:
                    outputs[:, t] = h
            if outputs is not None:
                x = outputs
        raw = np.maximum(h @ self.linear_w + self.linear_b, 0.0)
        return raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)

    def embed_utterances(self, wavs: Sequence[np.ndarray], *, preprocess: bool = True) -> np.ndarray:
        """(len(wavs), 256): each 16 kHz float utterance's embedding (Resemblyzer's
        preprocess_wav then embed_utterance), all partials in one batch. An utterance that
        the VAD trims to nothing is embedded untrimmed."""
        if not len(wavs):
            return np.zeros((0, EMBEDDING), np.float32)
        windows, owners = [], []
        for n, wav in enumerate(wavs):
            audio = np.asarray(wav, dtype=np.float32)
            if preprocess:
                trimmed = frontend.preprocess(audio)
                audio = trimmed if len(trimmed) else frontend.normalize_volume(audio)
            mels = frontend.partial_mels(audio)
            windows.append(mels)
            owners += [n] * len(mels)
        partials = self.partial_embeddings(np.concatenate(windows))
        sums = np.zeros((len(wavs), EMBEDDING), np.float64)
        np.add.at(sums, np.array(owners), partials)
        counts = np.bincount(owners, minlength=len(wavs))[:, None]
        means = sums / counts
        return (means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def embed_utterance(self, wav: np.ndarray, *, preprocess: bool = True) -> np.ndarray:
        return self.embed_utterances([wav], preprocess=preprocess)[0]
