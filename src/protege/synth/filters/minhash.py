"""MinHash over word shingles with LSH banding: near-duplicate candidates without comparing every pair.

    lsh = MinHashLSH(num_perm=128, bands=32)
    sig = lsh.signature({"the cat sat", "cat sat on"})
    lsh.query(sig)          # keys inserted earlier that share at least one band with sig
    lsh.insert("gen-1", sig)

A pair with Jaccard similarity s shares a band with probability 1 - (1 - s^r)^b (r = num_perm / b rows per
band): with 128 permutations in 32 bands that is 0.98 at s = 0.6 and 0.9998 at s = 0.8, while pairs at s = 0.2
rarely meet. Candidates are then confirmed on their exact Jaccard (dedup.py), so banding costs recall only far
below the threshold and never precision. Each permutation is the splitmix64 finaliser of the shingle's 64-bit
blake2b hash xor a per-permutation seed (a well-mixed 64-bit hash family, computed in wrapping uint64 numpy
arithmetic); blake2b rather than Python's hash() so signatures are the same on every run.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Hashable, Iterable

import numpy as np

EMPTY = np.iinfo(np.uint64).max


def hash64(shingle: str) -> int:
    return int.from_bytes(hashlib.blake2b(shingle.encode(), digest_size=8).digest(), "little")


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit affects every output bit (uint64 products wrap, as intended)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class MinHashLSH:
    def __init__(self, num_perm: int = 128, bands: int = 32, seed: int = 0):
        if num_perm % bands:
            raise ValueError(f"bands ({bands}) must divide num_perm ({num_perm})")
        rng = np.random.default_rng(seed)
        self.seeds = rng.integers(0, EMPTY, size=num_perm, dtype=np.uint64, endpoint=True)
        self.num_perm, self.bands, self.rows = num_perm, bands, num_perm // bands
        self._buckets: list[dict[bytes, list]] = [defaultdict(list) for _ in range(bands)]

    def signature(self, shingles: Iterable[str]) -> np.ndarray:
        x = np.fromiter((hash64(s) for s in shingles), dtype=np.uint64)
        if x.size == 0:
            return np.full(self.num_perm, EMPTY, dtype=np.uint64)
        return _mix(x[:, None] ^ self.seeds[None, :]).min(axis=0)

    def _band_keys(self, sig: np.ndarray) -> list[bytes]:
        return [sig[i * self.rows : (i + 1) * self.rows].tobytes() for i in range(self.bands)]

    def query(self, sig: np.ndarray) -> list:
        """Keys sharing at least one band with `sig`, each once."""
        found: dict = {}
        for band, key in zip(self._buckets, self._band_keys(sig)):
            for item in band.get(key, ()):
                found.setdefault(item, None)
        return list(found)

    def insert(self, item: Hashable, sig: np.ndarray) -> None:
        for band, key in zip(self._buckets, self._band_keys(sig)):
            band[key].append(item)


def estimated_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    return float(np.mean(sig_a == sig_b))
