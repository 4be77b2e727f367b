"""Sentence vectors cached in the warehouse by content hash, so a text is encoded once per model and window.

The table, on DuckDB and PostgreSQL alike (written once in DuckDB's SQL; the warehouse translates it)::

    embedding_cache (model TEXT, text_hash TEXT, dim INTEGER, vector BLOB (BYTEA on PostgreSQL),
                     PRIMARY KEY (model, text_hash))

``vector`` holds the float32 values as raw little-endian bytes (whatever the machine's byte order): 1.5 KB
for 384 dimensions, a third of the same numbers as text, and read back with one ``np.frombuffer``. A call
reads the cached rows for its hashes in one query and writes the missing ones in one
``INSERT ... SELECT unnest(...)``: a single statement, so a single transaction, without a round trip per row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from stackml.warehouse import Warehouse

__all__ = ["TABLE", "CachedEmbeddings", "embed_cached", "read_vectors", "text_hash", "write_vectors"]

TABLE = "embedding_cache"
_BYTES = np.dtype("<f4")  # float32, little-endian: the stored layout, the same from every machine

_CREATE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (model TEXT NOT NULL, text_hash TEXT NOT NULL, "
    "dim INTEGER NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (model, text_hash))"
)
# Arrays as parameters: one statement whatever the number of texts (PostgreSQL caps a statement at 65,535
# parameters, which one-row-per-VALUES would reach at 16k texts).
_SELECT = (
    f"SELECT text_hash, dim, vector FROM {TABLE} "
    "WHERE model = ? AND text_hash IN (SELECT unnest(CAST(? AS TEXT[])))"
)
# DO UPDATE rather than DO NOTHING: a row written by a concurrent call holds the same vector, and a damaged
# row (its length is not dim * 4 bytes, so it was read as a miss) is repaired instead of kept.
_INSERT = (
    f"INSERT INTO {TABLE} (model, text_hash, dim, vector) "
    "SELECT ?, unnest(CAST(? AS TEXT[])), ?, unnest(CAST(? AS BLOB[])) "
    "ON CONFLICT (model, text_hash) DO UPDATE SET dim = excluded.dim, vector = excluded.vector"
)


@dataclass(frozen=True)
class CachedEmbeddings:
    """The vectors of one cached call and where they came from.

    Attributes:
        vectors: ``(n, dim)`` float32, in the order of the texts.
        hits: texts found in the cache.
        embedded: texts encoded by this call (and written to the cache unless it was read-only).
    """

    vectors: np.ndarray
    hits: int
    embedded: int


def text_hash(text: str, max_length: int) -> str:
    """SHA-256 of the window and the UTF-8 text: the same text read through another window is another vector.

    The window comes first, as digits and a colon, so no text can make two (window, text) pairs collide.
    """
    return hashlib.sha256(f"{max_length}:".encode() + text.encode("utf-8")).hexdigest()


def read_vectors(warehouse: Warehouse, model: str, hashes: list[str], dim: int) -> dict[str, np.ndarray]:
    """The cached vectors of ``hashes`` under ``model`` (those with ``dim`` dimensions); none when the table
    does not exist yet."""
    if not hashes or not warehouse.has_table(TABLE):
        return {}
    rows = warehouse.query(_SELECT, [model, hashes], dialect="duckdb")
    found = {}
    for key, row_dim, blob in zip(rows["text_hash"], rows["dim"], rows["vector"]):
        if int(row_dim) == dim and len(blob) == dim * 4:
            found[key] = np.frombuffer(bytes(blob), dtype=_BYTES).astype(np.float32)
    return found


def write_vectors(warehouse: Warehouse, model: str, hashes: list[str], vectors: np.ndarray) -> None:
    """Store ``vectors`` (one row per hash) under ``model`` in one statement, creating the table if needed."""
    if not hashes:
        return
    warehouse.execute(_CREATE, dialect="duckdb")
    blobs = [np.ascontiguousarray(v, dtype=_BYTES).tobytes() for v in vectors]
    warehouse.execute(_INSERT, [model, hashes, int(vectors.shape[1]), blobs], dialect="duckdb")


def embed_cached(
    texts: list[str],
    warehouse: Warehouse,
    *,
    model: str,
    dim: int,
    max_length: int,
    embed: Callable[[list[str]], np.ndarray],
) -> CachedEmbeddings:
    """Vectors of ``texts`` from the cache, encoding (with ``embed``) only the texts it lacks.

    Args:
        texts: distinct texts (the caller removes repeats, so each is encoded and written once).
        warehouse: where the cache table lives; a read-only warehouse is read but never written.
        model: the cache's model key.
        dim: the vector size ``embed`` returns.
        max_length: the encoder's window in tokens, part of the hash.
        embed: encodes a list of texts to ``(len, dim)`` float32 vectors.
    """
    hashes = [text_hash(t, max_length) for t in texts]
    found = read_vectors(warehouse, model, hashes, dim)
    missing = [i for i, h in enumerate(hashes) if h not in found]
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for i, h in enumerate(hashes):
        if h in found:
            out[i] = found[h]
    if missing:
        fresh = embed([texts[i] for i in missing])
        out[missing] = fresh
        if not warehouse.read_only:
            write_vectors(warehouse, model, [hashes[i] for i in missing], fresh)
    return CachedEmbeddings(vectors=out, hits=len(texts) - len(missing), embedded=len(missing))
