import os
import random

import pytest
import quickxorhash

from celeste_desktop.domain.quickxor import HAS_C, QuickXorHash, quickxor_base64


def reference(data: bytes) -> bytes:
    hasher = quickxorhash.quickxorhash()
    hasher.update(data)
    return bytes(hasher.digest())


def test_the_c_implementation_is_used_when_installed() -> None:
    # The test extra installs it, so the fast path is what these tests exercise by default.
    assert HAS_C
    hasher = QuickXorHash()
    hasher.update(bytearray(b"abc"))
    assert hasher.digest() == hasher.digest() == reference(b"abc")  # digest() does not disturb the state


@pytest.mark.parametrize("pure", [True, False], ids=["pure", "c"])
@pytest.mark.parametrize("size", [0, 1, 7, 19, 20, 159, 160, 161, 319, 320, 4096, 100_003, 1 << 20])
def test_matches_the_c_reference_in_one_piece(size: int, pure: bool) -> None:
    data = os.urandom(size)
    hasher = QuickXorHash(pure=pure)
    hasher.update(data)
    assert hasher.digest() == reference(data)


@pytest.mark.parametrize("pure", [True, False], ids=["pure", "c"])
def test_matches_the_c_reference_in_random_chunks(pure: bool) -> None:
    rng = random.Random(7)
    for _ in range(40):
        data = rng.randbytes(rng.randint(0, 200_000))
        hasher = QuickXorHash(pure=pure)
        position = 0
        while position < len(data):
            step = rng.randint(1, 40_000)
            hasher.update(memoryview(data)[position : position + step])
            position += step
        assert hasher.digest() == reference(data)


def test_known_value_of_empty_content() -> None:
    # Graph reports AAAAAAAAAAAAAAAAAAAAAAAAAAA= for zero-byte files.
    assert quickxor_base64(b"") == "AAAAAAAAAAAAAAAAAAAAAAAAAAA="
