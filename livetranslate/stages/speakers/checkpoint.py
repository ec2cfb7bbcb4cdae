"""A PyTorch checkpoint read into numpy arrays, without torch.

`torch.save` writes one of two formats: the legacy one (pickles one after another in one file,
then each storage's raw bytes behind an 8-byte element count) and, since torch 1.6, a zip with
`data.pkl` and one raw file per storage. Both pickle their tensors as calls of
`torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)` whose storages are
persistent ids; here a custom Unpickler turns each into a numpy array. Nothing else from torch
is allowed to load: any other global is refused, so a checkpoint cannot run code.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

# torch's storage classes and the numpy type of their elements
_STORAGE_TYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


class CheckpointError(ValueError):
    pass


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = np.dtype(_STORAGE_TYPES[name])


class _Storage:
    """A storage named by the pickle; its bytes arrive later (legacy) or from the zip."""

    def __init__(self, key: str, dtype: np.dtype, numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel
        self.array: np.ndarray | None = None


class _LazyTensor:
    """A tensor whose storage is filled in after the pickle (the legacy format)."""

    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def materialise(self) -> np.ndarray:
        flat = self.storage.array
        if flat is None:
            raise CheckpointError(f"storage {self.storage.key} has no data")
        if not self.size:
            return flat[self.offset : self.offset + 1].reshape(()).copy()
        item = flat.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :], shape=self.size, strides=tuple(s * item for s in self.stride)
        )
        return np.array(view, copy=True)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, file: io.BufferedIOBase, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_TYPES:
            return _StorageType(name)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise CheckpointError(f"the checkpoint asks for {module}.{name}, which is not a tensor: refused")

    def persistent_load(self, pid: Any) -> _Storage:
        # ("storage", storage type, key, location, numel[, view metadata])
        if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
            raise CheckpointError(f"unknown persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(storage_type, _StorageType):
            raise CheckpointError(f"unknown storage type {storage_type!r}")
        if key not in self.storages:
            self.storages[key] = _Storage(key, storage_type.dtype, numel)
        return self.storages[key]


def _materialised(obj: Any) -> Any:
    if isinstance(obj, _LazyTensor):
        return obj.materialise()
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _materialised(v)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialised(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialised(v) for v in obj)
    return obj


def _load_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise CheckpointError(f"{path}: a zip without data.pkl is no torch checkpoint")
        root = pickles[0][: -len("data.pkl")]
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(io.BytesIO(archive.read(pickles[0])), storages).load()
        for key, storage in storages.items():
            raw = archive.read(f"{root}data/{key}")
            storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"), count=storage.numel)
    return obj


def _load_legacy(path: Path) -> Any:
    with open(path, "rb") as f:
        if pickle.load(f) != _LEGACY_MAGIC:
            raise CheckpointError(f"{path}: not a torch checkpoint (wrong magic number)")
        pickle.load(f)  # protocol version
        pickle.load(f)  # sys info: byte order, type sizes
        storages: dict[str, _Storage] = {}
        obj = _Unpickler(f, storages).load()
        for key in pickle.load(f):
            storage = storages[str(key)]
            numel = int(np.frombuffer(f.read(8), "<i8")[0])
            raw = f.read(numel * storage.dtype.itemsize)
            if numel != storage.numel or len(raw) != numel * storage.dtype.itemsize:
                raise CheckpointError(f"{path}: storage {key} is cut short")
            storage.array = np.frombuffer(raw, dtype=storage.dtype.newbyteorder("<"))
    return obj


def load_checkpoint(path: Path) -> Any:
    """The checkpoint's object (usually a dict holding a state dict) with numpy arrays in place
    of its tensors."""
    path = Path(path)
    obj = _load_zip(path) if zipfile.is_zipfile(path) else _load_legacy(path)
    return _materialised(obj)
