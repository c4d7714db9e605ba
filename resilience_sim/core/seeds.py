"""Named random streams: a 64-bit seed per (seed, name), so each component draws from its own stream
and changing one never reshuffles another's draws (the simulator's ``World.rng``, the live services'
and proxy's streams)."""
from __future__ import annotations

import hashlib


def stream_seed(seed: int, name: str) -> int:
    """A 64-bit seed derived from ``seed`` and a stream's ``name``, stable across runs and platforms."""
    digest = hashlib.blake2b(f"{seed}/{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
