"""Read back what an offline W&B run wrote (``WANDB_MODE=offline``): the records of its
``run-<id>.wandb`` file, which ``wandb sync`` would upload.

The file is W&B's header (``:W&B``, a 2-byte magic, a version byte) followed by LevelDB's log
format: 32 KiB blocks of records, each with a 7-byte header (CRC32, length, type: full, first,
middle, last), a record longer than what is left of its block split across blocks. Each record
is a ``wandb_internal_pb2.Record`` protobuf.
"""

import json
import struct
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7  # both the file's and each record's
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _payloads(data: bytes):
    assert data[:4] == b":W&B", "not a W&B run file"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # a block's tail too short for a record header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk


def records(path: Path):
    """The ``Record`` protobufs of one ``.wandb`` file, in order."""
    from wandb.proto import wandb_internal_pb2 as pb

    for payload in _payloads(Path(path).read_bytes()):
        record = pb.Record()
        record.ParseFromString(payload)
        yield record


def _item(item) -> tuple[str, object]:
    return item.key or "/".join(item.nested_key), json.loads(item.value_json)


def read_run(path: Path) -> dict:
    """``{"id", "config", "history", "artifacts", "exit_code"}`` of one ``.wandb`` file:
    ``history`` is the logged dicts in order, ``artifacts`` the logged artifacts' ``(name, type,
    aliases, [(path, size, digest)])``."""
    out = {"id": None, "config": {}, "history": [], "artifacts": [], "exit_code": None}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            out["id"] = record.run.run_id
            out["config"].update(dict(_item(i) for i in record.run.config.update))
        elif kind == "config":
            out["config"].update(dict(_item(i) for i in record.config.update))
        elif kind == "history":
            out["history"].append(dict(_item(i) for i in record.history.item))
        elif kind == "artifact":
            art = record.artifact
            files = [(c.path, c.size, c.digest) for c in art.manifest.contents]
            out["artifacts"].append((art.name, art.type, list(art.aliases), files))
        elif kind == "exit":
            out["exit_code"] = record.exit.exit_code
    return out
