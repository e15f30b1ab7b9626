"""A ``random.Random`` whose stream is a stable digest of ``(key, attempt)``."""

from __future__ import annotations

import hashlib
import random
from typing import Any, NoReturn


class DigestRandom(random.Random):
    """Draw the 64-bit words ``blake2b(f"{key}#{attempt}#{i}")`` for ``i = 0, 1, ...``.

    Every ``random.Random`` method is built on :meth:`random` and :meth:`getrandbits`,
    so ``uniform``, ``randrange`` and the rest work unchanged, as in
    ``random.SystemRandom``. Seeding a Mersenne Twister costs about 4 us, twice a whole
    jittered interval drawn this way, and a counter-mode digest has no seed to pay: a
    policy that draws nothing costs nothing. The stream depends only on its inputs,
    never on Python's salted ``hash()``, so it is the same in every process.

    :param key: the stable key of the wait (for example dag/task/run/map index).
    :param attempt: the poke number whose interval this rng draws.
    """

    def __init__(self, key: str, attempt: int) -> None:
        # Random.__init__ would seed the unused Mersenne Twister; set only what it sets.
        self.gauss_next = None
        self._key = key
        self._attempt = attempt
        self._draws = 0

    def _word(self) -> int:
        message = f"{self._key}#{self._attempt}#{self._draws}".encode()
        self._draws += 1
        return int.from_bytes(hashlib.blake2b(message, digest_size=8).digest(), "big")

    def random(self) -> float:
        """Return the next float in ``[0, 1)``, with 53 random bits like ``Random``."""
        return (self._word() >> 11) * 2.0**-53

    def getrandbits(self, k: int, /) -> int:
        """Return an int with ``k`` random bits.

        :raises ValueError: if ``k`` is negative.
        """
        if k < 0:
            raise ValueError(f"number of bits must be non-negative, got {k!r}")
        bits = 0
        for _ in range(-(-k // 64)):
            bits = bits << 64 | self._word()
        return bits >> (-k % 64)

    def seed(self, *args: Any, **kwargs: Any) -> NoReturn:
        """Refuse: the stream is fixed by ``(key, attempt)``; build another rng instead."""
        raise NotImplementedError(_FIXED_STREAM)

    def getstate(self) -> NoReturn:
        """Refuse: the stream is fixed by ``(key, attempt)``; there is no state to save."""
        raise NotImplementedError(_FIXED_STREAM)

    def setstate(self, state: tuple[Any, ...]) -> NoReturn:
        """Refuse: the stream is fixed by ``(key, attempt)``; build another rng instead."""
        raise NotImplementedError(_FIXED_STREAM)


_FIXED_STREAM = "a DigestRandom's stream is fixed by its key and attempt"
