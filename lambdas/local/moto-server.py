"""moto_server, with DynamoDB writes made atomic and S3's CRC32C checksums made right.

moto 5.2 serves each request on its own thread, and its DynamoDB backend reads,
changes and writes an item without a lock: two concurrent UpdateItem ADDs on one
item can lose one of the additions (measured: 19 of 20 concurrent ADDs kept).
Real DynamoDB applies each write atomically; the run state's exact counts rest on
that, so the emulator is made to as well.

moto computes a multipart object's checksum from its parts' bytes, as S3 does, but
its CRC32C needs the optional `crc32c` package and, without it, silently computes
CRC32 instead (a different checksum). Here CRC32C is computed right either way
(with numpy where the package is missing: about 700 MB/s, so a completion costs
little more than it did). And a HEAD with checksum mode gives a multipart object's
checksum as S3 does, and as moto's own GET does: the composite value followed by
"-<number of parts>" (moto's HEAD leaves the part count off).

And a ranged GET reads only its range: moto reads the whole object into memory for
any GET and slices the range out of it, so each range of a 1.5 GiB object cost seconds
before its first byte (a verification reading it range by range, invocation by
invocation, could not move). S3 serves a range in milliseconds.

Everything else is moto_server as is.
"""
import base64
import sys
import threading

from moto.s3 import models as s3_models
from moto.s3 import responses as s3_responses
from moto.s3 import utils as s3_utils
from moto.server import main

import moto_atomic_dynamodb  # noqa: F401  (DynamoDB writes made atomic; the module beside this one)


# CRC32C (Castagnoli, reflected), finished the usual way: register from ~0, result inverted.
_POLY = 0x82F63B78
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def _feed(register, data):
    """The register after `data`, a byte at a time (short inputs and the tail of long ones)."""
    for byte in data:
        register = _TABLE[(register ^ byte) & 0xFF] ^ (register >> 8)
    return register


def _apply(operator, value):
    """A linear map of 32-bit registers, given as the images of the 32 bits, applied to one value."""
    out = 0
    for column in operator:
        if value & 1:
            out ^= column
        value >>= 1
    return out


def _zeros(count):
    """The map a run of `count` zero bytes makes of the register (square and multiply)."""
    step = [_feed(1 << bit, b"\0") for bit in range(32)]
    operator = [1 << bit for bit in range(32)]
    while count:
        if count & 1:
            operator = [_apply(step, column) for column in operator]
        step = [_apply(step, column) for column in step]
        count >>= 1
    return operator


try:
    from crc32c import crc32c as _crc32c  # moto[s3crc32c]: what moto uses when it is there
except ImportError:
    try:
        import numpy as np
    except ImportError:
        np = None

    _LANES = 1 << 14

    def _halves(operator):
        """The map as two 65,536-entry tables: of a register's low 16 bits and of its high 16 bits."""
        columns = np.array(operator, dtype=np.uint32)
        tables = []
        for base in (0, 16):
            table = np.zeros(1 << 16, dtype=np.uint32)
            for bit in range(16):
                table[1 << bit : 1 << (bit + 1)] = table[: 1 << bit] ^ columns[base + bit]
            tables.append(table)
        return tables

    _tables = []

    def _crc32c(data, value=0):
        """
        CRC32C of `data`. Numpy runs 16,384 lanes at once, lane i taking the 32-bit words i, i + 16,384, ...
        The register is linear, so each lane advances by the map of 64 KiB of zeros per word, and the lanes
        are then folded in order, 4 bytes apart; the register of the whole prefix is moved past it the same way.
        """
        register = value ^ 0xFFFFFFFF
        rows = len(data) // (4 * _LANES)
        done = 0
        if np is not None and sys.byteorder == "little" and rows >= 4:
            if not _tables:
                word_low, word_high = _halves(_zeros(4))
                _tables.extend([*_halves(_zeros(4 * _LANES)), word_low.tolist(), word_high.tolist()])
            low, high, word_low, word_high = _tables
            done = rows * 4 * _LANES
            words = np.frombuffer(data, dtype="<u4", count=done // 4).reshape(rows, _LANES)
            lanes = words[0].copy()
            index = np.empty((2, _LANES), dtype=np.intp)
            for row in words[1:]:
                halves = lanes.view(np.uint16)
                index[0] = halves[0::2]
                index[1] = halves[1::2]
                lanes = low.take(index[0])
                lanes ^= high.take(index[1])
                lanes ^= row
            folded = 0
            for lane in lanes.tolist():
                folded = word_low[folded & 0xFFFF] ^ word_high[folded >> 16] ^ lane
            register = _apply(_zeros(done), register) ^ word_low[folded & 0xFFFF] ^ word_high[folded >> 16]
        return _feed(register, memoryview(data)[done:]) ^ 0xFFFFFFFF


_moto_compute_checksum = s3_utils.compute_checksum


def compute_checksum(body, algorithm, encode_base64=True):
    if algorithm != "CRC32C":
        return _moto_compute_checksum(body, algorithm, encode_base64)
    digest = _crc32c(bytes(body)).to_bytes(4, "big")
    return base64.b64encode(digest) if encode_base64 else digest


for _module in (s3_utils, s3_models, s3_responses):
    _module.compute_checksum = compute_checksum


_moto_head_object = s3_responses.S3Response.head_object


def head_object(self, bucket_name, query, key_name, headers):
    status, response_headers, body = _moto_head_object(self, bucket_name, query, key_name, headers)
    if status == 200 and headers.get("x-amz-checksum-mode") == "ENABLED":
        version_id = query.get("versionId", [None])[0]
        key = self.backend.head_object(bucket_name, key_name, version_id=version_id)
        name = f"x-amz-checksum-{(key.checksum_algorithm or '').lower()}"
        if key.checksum_type == "COMPOSITE" and name in response_headers:
            response_headers[name] = f"{key.checksum_value}-{key.checksum_parts}"
        if key.checksum_type and name in response_headers:
            response_headers["x-amz-checksum-type"] = key.checksum_type
    return status, response_headers, body


s3_responses.S3Response.head_object = head_object

_ranged = threading.local()


class _Ranges:
    """A GET's body, read from the object's buffer only where the Range header asks."""

    def __init__(self, key):
        self._key = key
        self._size = key.size

    def __len__(self):
        return self._size

    def __bool__(self):
        return self._size > 0

    def __getitem__(self, part):
        if not isinstance(part, slice):
            raise TypeError("a range of bytes only")
        start, stop, _ = part.indices(self._size)
        with self._key.lock:
            self._key._value_buffer.seek(start)
            return self._key._value_buffer.read(max(0, stop - start))


_value = s3_models.FakeKey.value


def _value_or_ranges(self):
    # Armed for one read: the body get_object returns (it reads the value once, last).
    if getattr(_ranged, "armed", False):
        _ranged.armed = False
        return _Ranges(self)
    return _value.fget(self)


s3_models.FakeKey.value = property(_value_or_ranges, _value.fset)

_moto_get_object = s3_responses.S3Response.get_object


def get_object(self):
    wanted = self.headers.get("range") or ""
    _ranged.armed = wanted.startswith("bytes=") and "," not in wanted and not self._get_int_param("partNumber")
    try:
        return _moto_get_object(self)
    finally:
        _ranged.armed = False


s3_responses.S3Response.get_object = get_object

_moto_key_response = s3_responses.S3Response.key_response


def key_response(self, request, full_url, headers):
    status, response_headers, body = _moto_key_response(self, request, full_url, headers)
    if isinstance(body, _Ranges):
        body = body[0 : len(body)]  # a range moto did not cut (treated as a whole GET): all of it
    return status, response_headers, body


s3_responses.S3Response.key_response = key_response

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
