#!/usr/bin/env python3
"""Builds events.out.tfevents.reference from TensorFlow's published format description alone
(tensorflow/core/lib/io/record_writer.cc: TFRecord framing with masked CRC-32C;
tensorflow/core/util/event.proto and core/framework/summary.proto, tensor.proto: the messages).
No TensorFlow, no protobuf library, no code shared with polo: CRC-32C is computed bit by bit from the
reflected Castagnoli polynomial 0x82F63B78 and the protobuf wire format is written by hand.

Run:  python3 make_events.py > events.out.tfevents.reference
The file holds: a file_version event, then two scalar events (simple_value, the classic
SummaryWriter form) and one event with a scalar float tensor (the tf.summary v2 form):
  step 1  wall 1700000000.5  loss = 0.75, reward/mean = 0.25
  step 2  wall 1700000001.25 loss = 0.5
  step 3  wall 1700000002.0  tensor_scalar = -1.5  (DT_FLOAT tensor, value in tensor_content)
"""
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return ((((c >> 15) | (c << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def ld(field, payload):  # length-delimited
    return key(field, 2) + varint(len(payload)) + payload


def event(wall, step=None, file_version=None, summary=None):
    b = key(1, 1) + struct.pack("<d", wall)
    if step is not None:
        b += key(2, 0) + varint(step)
    if file_version is not None:
        b += ld(3, file_version.encode())
    if summary is not None:
        b += ld(5, summary)
    return b


def simple_value(tag, v):
    return ld(1, ld(1, tag.encode()) + key(2, 5) + struct.pack("<f", v))


def tensor_value(tag, v):
    # TensorProto { dtype = 1 (DT_FLOAT); tensor_shape = 2 (empty: a scalar); tensor_content = 4 }
    tensor = key(1, 0) + varint(1) + ld(2, b"") + ld(4, struct.pack("<f", v))
    # SummaryMetadata { plugin_data = 1 { plugin_name = 1 "scalars" } }
    metadata = ld(1, ld(1, b"scalars"))
    return ld(1, ld(1, tag.encode()) + ld(9, metadata) + ld(8, tensor))


def record(data):
    head = struct.pack("<Q", len(data))
    return head + struct.pack("<I", masked(head)) + data + struct.pack("<I", masked(data))


assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value

out = b"".join(record(e) for e in [
    event(1700000000.0, file_version="brain.Event:2"),
    event(1700000000.5, step=1, summary=simple_value("loss", 0.75) + simple_value("reward/mean", 0.25)),
    event(1700000001.25, step=2, summary=simple_value("loss", 0.5)),
    event(1700000002.0, step=3, summary=tensor_value("tensor_scalar", -1.5)),
])
sys.stdout.buffer.write(out)
