from __future__ import annotations

import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from waitwise.triggers.policy._digest_random import DigestRandom


def test_first_word_is_the_blake2b_digest_of_key_attempt_and_draw():
    word = int.from_bytes(hashlib.blake2b(b"k#1#0", digest_size=8).digest(), "big")
    assert word == 8413638937411569193
    assert DigestRandom("k", 1).random() == (word >> 11) / 2**53 == 0.45610428072251263


def test_exact_stream_for_key_k_attempt_1():
    rng = DigestRandom("k", 1)
    draws = [
        rng.random(),
        rng.getrandbits(7),
        rng.getrandbits(70),
        rng.randrange(1000),
        rng.uniform(2.0, 9.0),
    ]
    assert draws == [0.45610428072251263, 73, 278049029506855500458, 762, 6.39296743574045]


@given(st.text(max_size=20), st.integers(1, 10**9))
def test_random_is_in_the_unit_interval(key: str, attempt: int):
    assert 0.0 <= DigestRandom(key, attempt).random() < 1.0


@given(st.text(max_size=20), st.integers(0, 300))
def test_getrandbits_returns_exactly_k_bits(key: str, bits: int):
    assert 0 <= DigestRandom(key, 1).getrandbits(bits) < 2**bits


def test_getrandbits_rejects_negative_counts():
    message = "number of bits must be non-negative, got -1"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DigestRandom("k", 1).getrandbits(-1)


@pytest.mark.parametrize(
    "call",
    [
        lambda rng: rng.seed(3),
        lambda rng: rng.getstate(),
        lambda rng: rng.setstate(()),
    ],
)
def test_has_no_state_to_seed_save_or_restore(call):
    message = "a DigestRandom's stream is fixed by its key and attempt"
    with pytest.raises(NotImplementedError, match=f"^{re.escape(message)}$"):
        call(DigestRandom("k", 1))
