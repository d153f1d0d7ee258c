"""QuickXorHash in pure Python, plus the algebra that lets the simulator hash huge lazy files.

QuickXorHash (OneDrive for Business, SharePoint) XORs byte ``i`` of the content into a 160-bit
ring at bit ``(11 * i) mod 160``, then XORs the content length (64-bit little-endian) into the
last eight of the 20 digest bytes. Since every step is an XOR, the hash only depends on the
*lanes* of the content: lane ``r`` is the XOR of all bytes whose index is ``r`` mod 160. Lanes
are kept as one 1280-bit integer (lane ``r`` in bits ``8r .. 8r+7``), which makes

- folding bytes in fast (big-integer XORs run in C), and
- hashing content assembled from parts cheap: the lanes of a part that starts at offset ``o``
  are the part's own lanes rotated by ``o`` lanes, XORed into the rest.

The simulator uses the second property to give a 300 MB or 1 GiB synthetic file its real hash
without generating its bytes. ``QuickXorHash`` here is the reference the app's tests check the
installed C package (``quickxorhash``) against.
"""

from __future__ import annotations

import base64
import operator

WIDTH_BITS = 160
WIDTH_BYTES = WIDTH_BITS // 8
SHIFT = 11
LANES = 160  # the ring position of byte i repeats every 160 bytes
LANE_BITS = LANES * 8
_LANE_MASK = (1 << LANE_BITS) - 1
_RING_MASK = (1 << WIDTH_BITS) - 1
_FOLD_PIECE = 1 << 20  # bytes folded per big-integer step; bounds the temporary integers
# Byte i of a class's word holds lane j = 11i mod 20 of that class (11 is its own inverse mod 20).
_BYTE_ORDER = operator.itemgetter(*[(SHIFT * i) % WIDTH_BYTES for i in range(WIDTH_BYTES)])


def rotate_lanes(lanes: int, offset: int) -> int:
    """Move lanes computed for data at offset 0 to data starting at ``offset``."""
    shift = (offset % LANES) * 8
    if not shift:
        return lanes
    return ((lanes << shift) | (lanes >> (LANE_BITS - shift))) & _LANE_MASK


def lanes_of(data: bytes | bytearray | memoryview, offset: int = 0) -> int:
    """The lanes of ``data`` placed at ``offset`` in the content."""
    view = memoryview(data).cast("B")
    total = 0
    position = 0
    while position < len(view):
        piece = view[position : position + _FOLD_PIECE]
        total ^= rotate_lanes(_fold(piece), offset + position)
        position += len(piece)
    return total


def _fold(piece: memoryview) -> int:
    """XOR the 160-byte rows of ``piece`` (at offset 0) into one row."""
    length = len(piece)
    rows = -(-length // LANES)
    value = int.from_bytes(piece, "little")
    # Halve the number of rows each round; the high half folds onto the low half, which keeps
    # every byte in its lane because both halves start at a multiple of 160 bytes.
    while rows > 1:
        low_rows = (rows + 1) // 2
        cut = low_rows * LANE_BITS
        value = (value & ((1 << cut) - 1)) ^ (value >> cut)
        rows = low_rows
    return value


def digest_from_lanes(lanes: int, length: int) -> bytes:
    """The 20-byte QuickXorHash digest of content with these lanes and this length."""
    # Lane 8j+k lands at ring bit (88j + 11k) mod 160 = 8 * (11j mod 20) + 11k: per class k the
    # 20 lanes are whole bytes of one 160-bit word, permuted, then rotated by 11k bits.
    lane_bytes = lanes.to_bytes(LANES, "little")
    ring = 0
    for k in range(8):
        word = int.from_bytes(bytes(_BYTE_ORDER(lane_bytes[k::8])), "little")
        shift = (SHIFT * k) % WIDTH_BITS
        ring ^= ((word << shift) | (word >> (WIDTH_BITS - shift))) & _RING_MASK
    digest = bytearray(ring.to_bytes(WIDTH_BYTES, "little"))
    for index, value in enumerate(length.to_bytes(8, "little", signed=False)):
        digest[WIDTH_BYTES - 8 + index] ^= value
    return bytes(digest)


def b64_from_lanes(lanes: int, length: int) -> str:
    """The base64 text Graph puts in ``file.hashes.quickXorHash``."""
    return base64.b64encode(digest_from_lanes(lanes, length)).decode("ascii")


class QuickXorHash:
    """Incremental QuickXorHash with the ``hashlib``-like surface of the C package."""

    name = "quickxorhash"
    digest_size = WIDTH_BYTES

    def __init__(self, data: bytes = b"") -> None:
        self._lanes = 0
        self._length = 0
        if data:
            self.update(data)

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._lanes ^= lanes_of(data, self._length)
        self._length += len(memoryview(data).cast("B"))

    def digest(self) -> bytes:
        return digest_from_lanes(self._lanes, self._length)

    def b64digest(self) -> str:
        return base64.b64encode(self.digest()).decode("ascii")

    def copy(self) -> QuickXorHash:
        twin = QuickXorHash()
        twin._lanes, twin._length = self._lanes, self._length
        return twin


def quickxor_b64(data: bytes | bytearray | memoryview) -> str:
    """Base64 QuickXorHash of ``data`` in one call."""
    return QuickXorHash(bytes(data)).b64digest()
