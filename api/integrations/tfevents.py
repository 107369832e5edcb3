"""A TensorBoard event file with one text summary, written without torch or TensorFlow.

`trainwatch run --attach-to tensorboard` writes in trainwatch's own process, which never imports
torch (1-2 s of start-up and hundreds of MB for one record). The format is small and stable: a
TFRecord file (each record: its length, a masked CRC-32C of the length, the bytes, a masked CRC-32C
of the bytes) of `Event` protocol buffers, the first naming the file version. The text summary is
the one torch's `SummaryWriter.add_text` writes (TensorBoard's text plugin, tag + `/text_summary`,
a DT_STRING tensor of shape [1]), so TensorBoard shows both alike.
"""

from __future__ import annotations

import os
import socket
import struct
import time

FILE_VERSION = b"brain.Event:2"
TEXT_SUFFIX = "/text_summary"  # what SummaryWriter.add_text adds to a tag
_DT_STRING = 7  # tensorflow/core/framework/types.proto


def write_text_event_file(log_dir: str, tag: str, text: str, step: int = 0) -> str:
    """A new event file in `log_dir` holding `text` under `tag`; returns its path."""
    os.makedirs(log_dir, exist_ok=True)
    now = time.time()
    # SummaryWriter's naming, so TensorBoard (which reads every events.out.tfevents.* file) and
    # anything that globs for event files find it
    name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}.0.trainwatch"
    path = os.path.join(log_dir, name)
    with open(path, "wb") as fh:
        fh.write(_record(_event(now, file_version=FILE_VERSION)))
        fh.write(_record(_event(now, step=step, summary=_text_summary(tag + TEXT_SUFFIX, text))))
    return path


def _text_summary(tag: str, text: str) -> bytes:
    plugin = _field(1, _bytes_value(b"text"))  # PluginData.plugin_name; its content is empty
    metadata = _field(1, _bytes_value(plugin))  # SummaryMetadata.plugin_data
    shape = _field(2, _bytes_value(_field(1, 0, _varint(1))))  # TensorShapeProto.dim {size: 1}
    tensor = (
        _field(1, 0, _varint(_DT_STRING))  # TensorProto.dtype
        + _field(2, _bytes_value(shape))  # .tensor_shape
        + _field(8, _bytes_value(text.encode("utf-8")))  # .string_val
    )
    value = (
        _field(1, _bytes_value(tag.encode("utf-8")))  # Summary.Value.tag
        + _field(8, _bytes_value(tensor))  # .tensor
        + _field(9, _bytes_value(metadata))  # .metadata
    )
    return _field(1, _bytes_value(value))  # Summary.value


def _event(
    wall_time: float, step: int = 0, file_version: bytes = b"", summary: bytes = b""
) -> bytes:
    out = _field(1, 1, struct.pack("<d", wall_time))  # Event.wall_time
    if step:
        out += _field(2, 0, _varint(step))
    if file_version:
        out += _field(3, _bytes_value(file_version))
    if summary:
        out += _field(5, _bytes_value(summary))
    return out


# ---- protocol buffers' wire format: only what the messages above need --------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _bytes_value(data: bytes) -> tuple[int, bytes]:
    return 2, _varint(len(data)) + data  # wire type 2: length-delimited


def _field(number: int, wire: int | tuple[int, bytes], payload: bytes = b"") -> bytes:
    if isinstance(wire, tuple):
        wire, payload = wire
    return _varint(number << 3 | wire) + payload


# ---- TFRecord framing ---------------------------------------------------------------------------
def _record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", _masked_crc(length))
        + data
        + struct.pack("<I", _masked_crc(data))
    )


def _masked_crc(data: bytes) -> int:
    crc = _crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli, reflected
        table.append(crc)
    return table


_TABLE = _crc32c_table()


def _crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
