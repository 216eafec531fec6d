"""The DP generator: ChaCha20 (RFC 8439 vectors), counter layout, backends, no reuse."""
import pickle
import threading

import numpy as np
import pytest
from scipy import stats

import synthcore
from conftest import to_host
from synthcore import dp
from synthcore._reference import secure_random as ref

RFC_KEY = bytes(range(32))
# RFC 8439 section 2.3.2: counter 1, nonce 00:00:00:09:00:00:00:4a:00:00:00:00
RFC_232 = ((1, 0x09000000, 0x4A000000, 0),
           "e4e7f110 15593bd1 1fdd0f50 c47120a3 c7f4d1c7 0368c033 9aaa2204 4e6cd4c3 "
           "466482d2 09aa9f07 05d7c214 a2028bd9 d19c12b5 b94e16de e883d0cb 4e3c50a2")
# RFC 8439 appendix A.1, test vector 1: zero key, counter 0, zero nonce
RFC_A1 = ((0, 0, 0, 0),
          "ade0b876 903df1a0 e56a5d40 28bd8653 b819d2bd 1aed8da0 ccef36a8 c70d778b "
          "7c5941da 8d485751 3fe02477 374ad8b8 f4b8436a 1ca11815 69b687c3 8665eeb2")


def _hex(words):
    return " ".join(f"{int(w):08x}" for w in words)


@pytest.mark.parametrize("key,vector", [(RFC_KEY, RFC_232), (bytes(32), RFC_A1)])
def test_rfc8439_block_vectors(key, vector):
    counters, expected = vector
    kw = np.frombuffer(key, dtype="<u4").astype(np.uint32)
    c = np.array([counters], dtype=np.uint32)
    assert _hex(ref.chacha20_blocks(kw, c)[0]) == expected
    out = np.empty((1, 16), dtype=np.uint32)
    synthcore._backend.core_module().chacha20_blocks(kw, c, out)
    assert _hex(out[0]) == expected


def test_rfc_vector_through_the_stream_layout(backend):
    # counter words 12..15 = (1, 0x09000000 | block hi, 0x4a000000, 0): block and stream
    gen = dp.insecure_generator_for_tests(RFC_KEY, stream=0x4A000000)
    block = 1 | (0x09000000 << 32)
    words = to_host(gen.words_at(16 * block, 16, backend=backend))
    assert _hex(words) == RFC_232[1]


@pytest.mark.parametrize("offset", [0, 1, 15, 16, 17, 2**40 + 5])
def test_backends_bit_identical_and_chunk_invariant(native_backend, offset):
    gen = dp.insecure_generator_for_tests(12345, stream=7)
    want = gen.words_at(offset, 50_003, backend="numpy")
    got = to_host(gen.words_at(offset, 50_003, backend=native_backend))
    np.testing.assert_array_equal(got, want)
    parts = [to_host(gen.words_at(offset + a, b - a, backend=native_backend))
             for a, b in [(0, 1), (1, 16), (16, 4099), (4099, 50_003)]]
    np.testing.assert_array_equal(np.concatenate(parts), want)


def test_large_fill_uses_threads_and_matches_reference():
    gen = dp.insecure_generator_for_tests(99)
    try:
        synthcore.set_num_threads(2)
        big = gen.words_at(3, 1_000_003, backend="cpu")
    finally:
        synthcore.set_num_threads(None)
    np.testing.assert_array_equal(big[-4096:], gen.words_at(3 + 1_000_003 - 4096, 4096,
                                                            backend="numpy"))


def test_draws_never_reuse_words_even_across_threads():
    gen = dp.insecure_generator_for_tests(5)
    a = gen.random_raw(1000, backend="cpu")
    b = gen.random_raw(1000, backend="cpu")
    np.testing.assert_array_equal(np.concatenate([a, b]), gen.words_at(0, 2000, backend="numpy"))
    results = []

    def draw():
        results.append(gen.random_raw(5000, backend="cpu"))
    threads = [threading.Thread(target=draw) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    allw = np.sort(np.concatenate(results))
    expected = np.sort(gen.words_at(2000, 8 * 5000, backend="numpy"))
    np.testing.assert_array_equal(allw, expected)


def test_secure_generator_is_keyed_from_the_os_and_keeps_its_key():
    g1, g2 = dp.SecureGenerator(), dp.SecureGenerator()
    assert not g1.insecure and dp.insecure_generator_for_tests(1).insecure
    assert not np.array_equal(g1.random_raw(64), g2.random_raw(64))
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(g1)
    assert "key" not in repr(g1).lower()


def test_keystream_bits_are_balanced():
    w = dp.insecure_generator_for_tests(2024).words_at(0, 1_000_000, backend="cpu")
    bits = np.unpackbits(w.view(np.uint8)).reshape(-1, 32).sum(axis=0)
    assert min(stats.binomtest(int(b), w.size, 0.5).pvalue for b in bits) > 1e-6 / 32
    counts = np.bincount((w >> 22).astype(np.int64), minlength=1024)
    assert stats.chisquare(counts).pvalue > 1e-6


@pytest.mark.parametrize("key", [b"short", -1, 2**256, 1.5, "abc"])
def test_bad_keys(key):
    with pytest.raises(ValueError, match="key must be"):
        dp.insecure_generator_for_tests(key)


def test_bad_counts():
    with pytest.raises(ValueError, match="n must be"):
        dp.SecureGenerator().random_raw(-1)
