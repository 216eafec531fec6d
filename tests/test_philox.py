"""Philox4x32-10: Random123 known-answer vectors and synthcore's counter layout."""
import numpy as np
import pytest

from conftest import to_host
from synthcore import random as sr
from synthcore._reference.philox import stream_words

# Random123 tests/kat_vectors: counter (4 words), key (2 words) -> output (4 words).
KAT = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff), (0xffffffff, 0xffffffff),
     (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344), (0xa4093822, 0x299f31d0),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_known_answer_vectors(backend, xp, ctr, key, expected):
    counters = xp.asarray(np.array([ctr], dtype=np.uint32))
    out = sr.philox4x32_10(counters, sr.PhiloxKey(*key), backend=backend)
    assert type(out) is type(counters)
    assert to_host(out)[0].tolist() == list(expected)


def test_block_function_batched_matches_rows(backend, xp):
    rng = np.random.default_rng(7)
    counters = rng.integers(0, 2**32, size=(1000, 4), dtype=np.uint32)
    key = sr.PhiloxKey(0x12345678, 0x9ABCDEF0)
    got = to_host(sr.philox4x32_10(xp.asarray(counters), key, backend=backend))
    want = sr.philox4x32_10(counters, key, backend="numpy")
    np.testing.assert_array_equal(got, want)


def test_stream_layout_is_counter_block_then_stream(backend):
    # Word w of (key, stream) = Philox(ctr = (lo(w//4), hi(w//4), lo(stream), hi(stream)))[w % 4].
    key = sr.PhiloxKey(3, 4)
    stream = 0x0123456789ABCDEF
    offset = (1 << 34) + 5  # block index above 2**32 exercises the high counter word
    words = to_host(sr.random_raw(11, seed=key, stream=stream, offset=offset, backend=backend))
    blocks = np.arange(offset // 4, (offset + 11 + 3) // 4, dtype=np.uint64)
    ctr = np.stack([blocks & 0xFFFFFFFF, blocks >> np.uint64(32),
                    np.full_like(blocks, stream & 0xFFFFFFFF),
                    np.full_like(blocks, stream >> 32)], axis=1).astype(np.uint32)
    expected = sr.philox4x32_10(ctr, key, backend="numpy").reshape(-1)
    np.testing.assert_array_equal(words, expected[offset % 4: offset % 4 + 11])


def test_zero_counter_known_answer_through_the_stream_api(backend):
    words = to_host(sr.random_raw(4, seed=sr.PhiloxKey(0, 0), backend=backend))
    assert words.tolist() == [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]


def test_reference_stream_words_handles_unaligned_ranges():
    key = (1, 2)
    whole = stream_words(key, 9, 0, 64)
    for first in range(0, 9):
        for count in range(0, 13):
            np.testing.assert_array_equal(stream_words(key, 9, first, count),
                                          whole[first:first + count])
