import os
import random

import pytest
import quickxorhash

from celeste_desktop.domain.quickxor import QuickXorHash, quickxor_base64


def reference(data: bytes) -> bytes:
    hasher = quickxorhash.quickxorhash()
    hasher.update(data)
    return bytes(hasher.digest())


@pytest.mark.parametrize("size", [0, 1, 7, 19, 20, 159, 160, 161, 319, 320, 4096, 100_003, 1 << 20])
def test_matches_the_c_reference_in_one_piece(size: int) -> None:
    data = os.urandom(size)
    hasher = QuickXorHash()
    hasher.update(data)
    assert hasher.digest() == reference(data)


def test_matches_the_c_reference_in_random_chunks() -> None:
    rng = random.Random(7)
    for _ in range(40):
        data = rng.randbytes(rng.randint(0, 200_000))
        hasher = QuickXorHash()
        position = 0
        while position < len(data):
            step = rng.randint(1, 40_000)
            hasher.update(memoryview(data)[position : position + step])
            position += step
        assert hasher.digest() == reference(data)


def test_known_value_of_empty_content() -> None:
    # Graph reports AAAAAAAAAAAAAAAAAAAAAAAAAAA= for zero-byte files.
    assert quickxor_base64(b"") == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
