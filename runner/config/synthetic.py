"""Synthetic prompts of given lengths, deterministic from the seed (replay, conversations).

Every text is made of four-character units (a space and a three-letter word, as
``prompts.synthetic_text``), so the emulator counts exactly one token per unit. Words are
drawn from ``prompts.WORDS`` by a generator seeded with the text's key, so equal keys give
equal texts and different keys give texts that differ from the first word on.

Shared prefixes (Mooncake ``hash_ids``): block *h* is the text keyed ``(seed, "block", h)``,
so two requests whose ids start alike send prompts whose beginnings are the same text.
"""

from __future__ import annotations

import random
from functools import lru_cache

from latlab.runner.config.prompts import WORDS

CHARS_PER_TOKEN = 4


def seeded_text(tokens: int, key: str) -> str:
    """``tokens`` four-character units drawn by a generator seeded with ``key``."""
    rng = random.Random(key)
    return "".join(" " + word for word in rng.choices(WORDS, k=max(tokens, 0)))


@lru_cache(maxsize=8192)
def block_text(seed: int, hash_id: int, block_tokens: int) -> str:
    """The shared block ``hash_id`` (the same text wherever the id appears)."""
    return seeded_text(block_tokens, f"{seed}:block:{hash_id}")


def prefix_and_tail(seed: int, index: int, tokens: int, hash_ids: tuple[int, ...],
                    block_tokens: int, shared: int) -> tuple[str, str]:
    """A prompt of ``tokens`` tokens in two parts: the first ``shared`` blocks of ``hash_ids``
    (the prefix other requests share), then the other blocks and a tail of the request's own
    (``index``) to make up the length; the whole cut to ``tokens``."""
    chars = tokens * CHARS_PER_TOKEN
    prefix = "".join(block_text(seed, h, block_tokens) for h in hash_ids[:shared])[:chars]
    rest = "".join(block_text(seed, h, block_tokens) for h in hash_ids[shared:])
    rest = rest[:chars - len(prefix)]
    missing = tokens - (len(prefix) + len(rest)) // CHARS_PER_TOKEN
    return prefix, rest + (seeded_text(missing, f"{seed}:tail:{index}") if missing > 0 else "")


def shared_blocks(all_ids: list[tuple[int, ...]]) -> list[int]:
    """For each request, how many leading ``hash_ids`` it shares with another request."""
    seen: dict[tuple[int, ...], int] = {}
    for ids in all_ids:
        for k in range(1, len(ids) + 1):
            seen[ids[:k]] = seen.get(ids[:k], 0) + 1
    return [max((k for k in range(1, len(ids) + 1) if seen[ids[:k]] > 1), default=0)
            for ids in all_ids]


def token_count(text: str) -> int:
    """Tokens as the emulator counts them (and as these texts are built)."""
    return len(text) // CHARS_PER_TOKEN
