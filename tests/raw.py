"""A raw gRPC stream to `pipeline` that sends whatever tensors a test wants."""

import queue
import random

import numpy as np
import tritonclient.grpc as grpcclient

from livetranslate import protocol as P
from livetranslate.client.connection import stop_stream


class RawStream:
    def __init__(self, server_or_url):
        self.client = grpcclient.InferenceServerClient(getattr(server_or_url, "grpc_url", server_or_url))
        self.events = queue.Queue()
        self.client.start_stream(callback=lambda result, error: self.events.put(error or result))
        self.sequence_id = random.randint(1, 2**62)

    def send(self, tensors, start=False, end=False):
        inputs = []
        for name, value in tensors.items():
            dtype = "BYTES" if value.dtype == np.object_ else grpcclient.np_to_triton_dtype(value.dtype)
            tensor = grpcclient.InferInput(name, list(value.shape), dtype)
            tensor.set_data_from_numpy(value)
            inputs.append(tensor)
        self.client.async_stream_infer(
            P.PIPELINE, inputs, sequence_id=self.sequence_id, sequence_start=start, sequence_end=end
        )

    def next(self, timeout=60):
        item = self.events.get(timeout=timeout)
        if isinstance(item, Exception):
            return item
        return P.Event.from_tensors(item.as_numpy)

    def close(self, cancel=False):
        """`cancel`: as a client that vanishes does, without waiting for answers."""
        stop_stream(self.client, cancel=cancel)
        self.client.close()
