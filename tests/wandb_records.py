"""Read a W&B offline run back from its `.wandb` file, with W&B's own record schema (wandb_internal_pb2).

The file is a LevelDB-style log: a 7-byte header (":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of
records, each a 7-byte header (CRC32, length, type: full, first, middle, last) and its bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> list[wandb_internal_pb2.Record]:
    """Every record of a `.wandb` file, in order."""
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, offset = [], b"", HEADER
    while offset + HEADER <= len(data):
        left = BLOCK - offset % BLOCK
        if left < HEADER:  # the block's tail is padding
            offset += left
            continue
        _, length, kind = struct.unpack("<IHB", data[offset:offset + HEADER])
        if kind == 0 and length == 0:
            offset += left
            continue
        chunk = data[offset + HEADER:offset + HEADER + length]
        offset += HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def offline_runs(folder: Path) -> dict[str, list[wandb_internal_pb2.Record]]:
    """The records of each offline run under `folder/wandb/`, by W&B run id (a resumed run's files joined)."""
    runs: dict[str, list] = {}
    for path in sorted(Path(folder).glob("wandb/offline-run-*/run-*.wandb")):
        runs.setdefault(path.stem.removeprefix("run-"), []).extend(read_records(path))
    return runs


def of_kind(records: list, kind: str) -> list:
    """The payloads of the records of one kind ("run", "history", "config", "artifact", ...)."""
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def history_rows(records: list) -> list[dict[str, str]]:
    """Each logged step as {metric: JSON text}, `_step` included (a key may be stored as a nested key)."""
    return [{item.key or "/".join(item.nested_key): item.value_json for item in history.item}
            for history in of_kind(records, "history")]
