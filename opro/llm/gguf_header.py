"""A GGUF LoRA adapter's header, read with the standard library before llama.cpp loads it, so that a file that
is not one (a text file, a base model, a download cut short) is reported by its own name rather than as the base
model failing to load.

GGUF layout (little-endian): magic `GGUF`, version (uint32, 2 or 3), tensor count and key-value count (uint64),
the key-values, one info per tensor (name, dims, type, offset), then the tensor data from an aligned start.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, BinaryIO

from opro.errors import OproError

#: Bytes of one block and elements per block of the ggml tensor types an adapter is written in (others are
#: checked by their start only).
BLOCKS = {0: (4, 1), 1: (2, 1), 30: (2, 1), 8: (34, 32), 2: (18, 32), 3: (20, 32)}  # F32 F16 BF16 Q8_0 Q4_0 Q4_1
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
#: More key-values, tensors or dimensions than this is not a header but garbage.
LIMIT = 1 << 20


class _Cut(Exception):
    """The file ended inside its header."""


def check_lora_adapter(path: Path) -> None:
    """A one-line OproError naming `path` unless it is a whole GGUF file of type adapter (LoRA)."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            values, end = _read_header(handle)
    except OSError as error:
        raise OproError(f"cannot read the LoRA adapter {path}: {error.strerror or error}") from None
    except _Cut:
        raise OproError(f"the LoRA adapter {path} is cut short (its GGUF header is incomplete)") from None
    except ValueError as error:
        raise OproError(f"the LoRA adapter {path} is not a GGUF file: {error}") from None
    kind = values.get("general.type")
    if kind != "adapter" or values.get("adapter.type", "lora") != "lora":
        raise OproError(f"{path} is not a GGUF LoRA adapter (general.type is {kind!r}, not 'adapter'); give an "
                        "adapter written by `opro rl export-gguf` or llama.cpp's convert_lora_to_gguf.py")
    if end > size:
        raise OproError(f"the LoRA adapter {path} is cut short ({size} bytes; its tensors need {end})")


def _read_header(handle: BinaryIO) -> tuple[dict[str, Any], int]:
    """The key-values of a GGUF file and the byte where its tensor data ends."""
    if handle.read(4) != b"GGUF":
        raise ValueError("it does not start with GGUF")
    version, tensors, count = struct.unpack("<IQQ", _take(handle, 20))
    if version not in (2, 3) or tensors > LIMIT or count > LIMIT:
        raise ValueError(f"version {version}, {tensors} tensors, {count} keys")
    values = {}
    for _ in range(count):
        key = _string(handle)
        values[key] = _value(handle, _unpack(handle, "<I"))
    end = 0
    for _ in range(tensors):
        _string(handle)
        dims = _unpack(handle, "<I")
        if dims > 8:
            raise ValueError(f"a tensor with {dims} dimensions")
        shape = struct.unpack(f"<{dims}Q", _take(handle, 8 * dims))
        kind, offset = struct.unpack("<IQ", _take(handle, 12))
        elements = 1
        for d in shape:
            elements *= d
        block, per_block = BLOCKS.get(kind, (0, 1))
        end = max(end, offset + -(-elements // per_block) * block)
    alignment = values.get("general.alignment", 32)
    alignment = alignment if isinstance(alignment, int) and alignment > 0 else 32
    start = -(-handle.tell() // alignment) * alignment
    return values, start + end


def _take(handle: BinaryIO, size: int) -> bytes:
    data = handle.read(size)
    if len(data) != size:
        raise _Cut
    return data


def _unpack(handle: BinaryIO, fmt: str) -> Any:
    return struct.unpack(fmt, _take(handle, struct.calcsize(fmt)))[0]


def _string(handle: BinaryIO) -> str:
    length = _unpack(handle, "<Q")
    if length > LIMIT:
        raise ValueError(f"a string of {length} bytes in the header")
    return _take(handle, length).decode("utf-8", "replace")


def _value(handle: BinaryIO, kind: int) -> Any:
    if kind in _SCALARS:
        return _unpack(handle, _SCALARS[kind])
    if kind == 8:
        return _string(handle)
    if kind == 9:
        item, count = _unpack(handle, "<I"), _unpack(handle, "<Q")
        if count > LIMIT * 64:
            raise ValueError(f"an array of {count} items in the header")
        return [_value(handle, item) for _ in range(count)]
    raise ValueError(f"unknown value type {kind}")
