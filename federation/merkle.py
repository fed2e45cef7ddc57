"""Merkle tree hashes over the feed (RFC 6962, section 2.1), so history cannot be rewritten
unnoticed: a subscriber that holds the entries recomputes the root a checkpoint signs."""

import hashlib


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root(leaves: list[bytes]) -> bytes:
    """The Merkle tree hash of a list of leaf hashes (the empty tree hashes the empty string)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    # Building level by level and carrying an odd last node up gives RFC 6962's split at the
    # largest power of two for every size.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]
