"""Restricted reader for LEGACY (non-zip) PyTorch checkpoints, standard library only.

A legacy `torch.save` file is a concatenation of pickles followed by raw storage bytes:

    magic number (LONG1 0x1950a86a20f9469cfc6c) | protocol version (1001) | sys_info dict
    | state-dict pickle (tensors reference storages through BINPERSID)
    | pickle of the list of storage keys
    | for each key, in that order: int64 LE element count, then count * itemsize raw LE bytes

Why restricted: `pickle.load` resolves any global the stream names and calls it (REDUCE), so a
checkpoint can run arbitrary code. This reader resolves only the few names a state dict needs and maps
them to inert stand-ins defined here; torch is never imported and every other global is refused.
"""

from __future__ import annotations

import io
import itertools
import math
import pickle
import struct
from dataclasses import dataclass

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001


class CheckpointError(Exception):
    """The checkpoint is malformed or asks for something this reader refuses."""


@dataclass(frozen=True)
class StorageType:
    """Stand-in for torch.<X>Storage: an inert value (not callable), so REDUCE on it fails."""

    torch_name: str
    dtype: str  # safetensors dtype code
    itemsize: int


# Only what EfficientNet-style state dicts use, plus the common float/int siblings.
STORAGE_TYPES = {
    "FloatStorage": StorageType("FloatStorage", "F32", 4),
    "DoubleStorage": StorageType("DoubleStorage", "F64", 8),
    "HalfStorage": StorageType("HalfStorage", "F16", 2),
    "LongStorage": StorageType("LongStorage", "I64", 8),
    "IntStorage": StorageType("IntStorage", "I32", 4),
}


@dataclass
class Storage:
    key: str
    type: StorageType
    numel: int
    data: bytes | None = None  # filled in after the key list is read


@dataclass(frozen=True)
class TensorRef:
    storage: Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


@dataclass(frozen=True)
class Tensor:
    """A materialised tensor: safetensors dtype code, shape and contiguous little-endian bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


class StateDict(dict):
    """Stand-in for collections.OrderedDict (dicts keep insertion order anyway)."""

    def __setstate__(self, state):
        # torch attaches `_metadata` (per-module version numbers) through BUILD; keep it as plain data
        # instead of letting BUILD write arbitrary attributes.
        if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
            raise CheckpointError(f"unexpected BUILD state on OrderedDict: {type(state).__name__}")
        self.torch_state = state


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks, metadata=None):
    """Stand-in for torch._utils._rebuild_tensor_v2: validates and records, builds nothing."""
    if not isinstance(storage, Storage):
        raise CheckpointError(f"tensor storage is {type(storage).__name__}, expected a persistent storage")
    if not _is_int(storage_offset) or storage_offset < 0:
        raise CheckpointError(f"tensor storage offset {storage_offset!r} is not a non-negative int")
    if not isinstance(size, tuple) or not all(_is_int(s) and s >= 0 for s in size):
        raise CheckpointError(f"tensor size {size!r} is not a tuple of non-negative ints")
    if not isinstance(stride, tuple) or len(stride) != len(size) or not all(_is_int(s) and s >= 0 for s in stride):
        raise CheckpointError(f"tensor stride {stride!r} does not match size {size!r}")
    if not isinstance(requires_grad, bool):
        raise CheckpointError(f"requires_grad {requires_grad!r} is not a bool")
    if not isinstance(backward_hooks, dict) or backward_hooks:
        raise CheckpointError("tensor has backward hooks; a plain state dict has none")
    if metadata is not None and not isinstance(metadata, dict):
        raise CheckpointError(f"tensor metadata {metadata!r} is not a dict")
    return TensorRef(storage, storage_offset, size, stride)


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): StateDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    **{("torch", name): storage_type for name, storage_type in STORAGE_TYPES.items()},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS (to local stand-ins); storages come from persistent ids."""

    def __init__(self, file, allow_globals: bool):
        super().__init__(file)
        self.allow_globals = allow_globals
        self.storages: dict[str, Storage] = {}

    def find_class(self, module, name):
        target = ALLOWED_GLOBALS.get((module, name)) if self.allow_globals else None
        if target is None:
            raise pickle.UnpicklingError(
                f"refusing global {module}.{name}: only "
                + ", ".join(sorted(f"{m}.{n}" for m, n in ALLOWED_GLOBALS))
                + " may appear in a state dict"
            )
        return target

    def persistent_load(self, pid):
        if not self.allow_globals:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}: only ('storage', ...) tuples")
        _, storage_type, key, location, numel, view_metadata = pid
        if not isinstance(storage_type, StorageType):
            raise pickle.UnpicklingError(f"persistent id names {storage_type!r}, not an allowed storage type")
        if not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise pickle.UnpicklingError(f"malformed storage id {pid!r}")
        if not isinstance(location, str) or not location.startswith(("cpu", "cuda")):
            raise pickle.UnpicklingError(f"storage {key} has unknown location {location!r}")
        if view_metadata is not None:
            raise pickle.UnpicklingError(f"storage {key} is a view; legacy storage views are not supported")
        existing = self.storages.get(key)
        if existing is None:
            existing = self.storages[key] = Storage(key, storage_type, numel)
        elif existing.type != storage_type or existing.numel != numel:
            raise pickle.UnpicklingError(f"storage {key} is declared twice with different type or size")
        return existing


def _load_one(stream: io.BytesIO, what: str, allow_globals: bool = False):
    unpickler = RestrictedUnpickler(stream, allow_globals)
    try:
        return unpickler.load(), unpickler
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError) as error:
        raise CheckpointError(f"{what}: {error}") from None


# Unsigned integer memoryview formats by item size: copying elements needs only their width.
_UINT_CODES = {struct.calcsize(code): code for code in "BHILQ"}


def _contiguous_strides(size: tuple[int, ...]) -> tuple[int, ...]:
    strides, step = [], 1
    for dim in reversed(size):
        strides.append(step)
        step *= dim
    return tuple(reversed(strides))


def materialize(name: str, ref: TensorRef) -> Tensor:
    """Copy the tensor's elements out of its storage in row-major order, honouring offset and stride."""
    storage, itemsize = ref.storage, ref.storage.type.itemsize
    numel = math.prod(ref.size)
    if numel == 0:
        return Tensor(storage.type.dtype, ref.size, b"")
    last = ref.offset + sum((s - 1) * st for s, st in zip(ref.size, ref.stride))
    if last >= storage.numel:
        raise CheckpointError(
            f"{name}: size {ref.size} stride {ref.stride} offset {ref.offset} reads element {last}"
            f" but storage {storage.key} has {storage.numel}"
        )
    data = storage.data
    expected = _contiguous_strides(ref.size)
    # Dimensions of extent 1 may carry any stride without affecting the layout.
    if all(st == ex for s, st, ex in zip(ref.size, ref.stride, expected) if s != 1):
        start = ref.offset * itemsize
        return Tensor(storage.type.dtype, ref.size, bytes(data[start:start + numel * itemsize]))
    # Strided copy (this checkpoint stores conv kernels as HWIO under OIHW strides): drop extent-1
    # dimensions, then take the innermost dimension as one strided slice per outer index.
    elements = memoryview(data).cast(_UINT_CODES[itemsize])
    dims = [(s, st) for s, st in zip(ref.size, ref.stride) if s != 1]
    (inner, inner_stride), outer = dims[-1], dims[:-1]
    out = bytearray()
    for index in itertools.product(*(range(s) for s, _ in outer)):
        base = ref.offset + sum(i * st for i, (_, st) in zip(index, outer))
        if inner_stride == 0:  # a broadcast (expanded) dimension repeats one element
            out += elements[base:base + 1].tobytes() * inner
        else:
            out += elements[base:base + (inner - 1) * inner_stride + 1:inner_stride].tobytes()
    return Tensor(storage.type.dtype, ref.size, bytes(out))


def load_legacy_checkpoint(blob: bytes) -> dict[str, Tensor]:
    """Parse a legacy torch.save state dict without executing anything it names."""
    stream = io.BytesIO(blob)
    magic, _ = _load_one(stream, "magic number")
    if magic != MAGIC_NUMBER:
        raise CheckpointError("not a legacy PyTorch checkpoint (magic number missing; zip checkpoints are not handled)")
    protocol, _ = _load_one(stream, "protocol version")
    if protocol != PROTOCOL_VERSION:
        raise CheckpointError(f"unsupported legacy protocol version {protocol!r}, expected {PROTOCOL_VERSION}")
    sys_info, _ = _load_one(stream, "sys_info")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise CheckpointError(f"sys_info {sys_info!r} does not declare a little-endian checkpoint")

    state, unpickler = _load_one(stream, "state dict", allow_globals=True)
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, TensorRef) for k, v in state.items()):
        raise CheckpointError("top-level object is not a mapping of names to tensors (a state dict)")
    storages = unpickler.storages

    keys, _ = _load_one(stream, "storage key list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise CheckpointError("storage key list is not a list of strings")
    if len(set(keys)) != len(keys) or set(keys) != set(storages):
        raise CheckpointError(
            f"storage key list ({len(keys)} keys) does not match the {len(storages)} storages the tensors use"
        )

    position = stream.tell()
    for key in keys:
        storage = storages[key]
        if position + 8 > len(blob):
            raise CheckpointError(f"file ends inside the size field of storage {key}")
        (count,) = struct.unpack_from("<q", blob, position)
        if count != storage.numel:
            raise CheckpointError(f"storage {key} holds {count} elements, the pickle declared {storage.numel}")
        position += 8
        end = position + count * storage.type.itemsize
        if end > len(blob):
            raise CheckpointError(f"file ends inside storage {key} ({end - len(blob)} bytes missing)")
        storage.data = blob[position:end]
        position = end
    if position != len(blob):
        raise CheckpointError(f"{len(blob) - position} unexpected bytes after the last storage")

    return {name: materialize(name, ref) for name, ref in state.items()}
