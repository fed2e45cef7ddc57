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


# A frontier is the list of perfect subtrees (size, hash) that cover an append-only log, largest
# first: enough to extend the log and compute its root without reading the leaves again.
Frontier = list[tuple[int, bytes]]


def extend(frontier: Frontier, leaves: list[bytes]) -> Frontier:
    out = list(frontier)
    for leaf in leaves:
        out.append((1, leaf))
        while len(out) > 1 and out[-1][0] == out[-2][0]:
            (size, left), (_, right) = out[-2], out[-1]
            out[-2:] = [(size * 2, node_hash(left, right))]
    return out


def frontier_root(frontier: Frontier) -> bytes:
    """RFC 6962 splits at the largest power of two, so the root folds the subtrees from the
    right: MTH = node(first, node(second, ... last))."""
    if not frontier:
        return hashlib.sha256(b"").digest()
    digest = frontier[-1][1]
    for _, left in reversed(frontier[:-1]):
        digest = node_hash(left, digest)
    return digest


def frontier_size(frontier: Frontier) -> int:
    return sum(size for size, _ in frontier)


def dump_frontier(frontier: Frontier) -> list[list[int | str]]:
    return [[size, digest.hex()] for size, digest in frontier]


def load_frontier(data: list[list[int | str]] | None) -> Frontier:
    return [(int(size), bytes.fromhex(str(digest))) for size, digest in data or []]
