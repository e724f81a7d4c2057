"""A local restic repository's metadata, read directly with its master key.

Every restic start derives the repository key from the password (scrypt, about a third
of a second of CPU with the parameters restic chooses), so a restore test that reads
a snapshot's trees one `restic cat blob` at a time pays that once per folder. For a
local repository the same facts are read here instead, after one `restic cat
masterkey`: the config (the repository id), the index files (which pack holds which
blob) and tree blobs. Everything read is authenticated first (Poly1305-AES over the
ciphertext, as restic writes it) and a blob's plaintext must hash to its id, so a
damaged byte is `Damaged`, never a wrong answer. A repository this reader does not
understand (`Unsupported`: an unknown version or compression) is left to restic.

The master key lives in this process's memory only: it is never logged, stored, or
put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

_ID = re.compile(r"[0-9a-f]{64}")
_NONCE = 16
_MAC = 16
# An index or tree larger than this is not read into memory here (restic's own index
# files stay far below it); restic's own commands handle such a repository.
_MAX_PLAINTEXT = 256 << 20


class Unsupported(Exception):
    """The repository is in a form this reader does not handle; ask restic instead."""


class Damaged(Exception):
    """What was read fails authentication or its hash: the repository's data is wrong."""


@dataclass(frozen=True)
class MasterKey:
    """The repository's master key: AES-256 for content, Poly1305-AES for its MAC."""

    encrypt: bytes = field(repr=False)
    mac_k: bytes = field(repr=False)
    mac_r: bytes = field(repr=False)


def parse_masterkey(text: str) -> MasterKey:
    """Given `restic cat masterkey` output, return the key; raise Unsupported if it is not one.

    The message never quotes the output (it is the key).
    """
    try:
        raw = json.loads(text)
        key = MasterKey(
            encrypt=base64.b64decode(raw["encrypt"], validate=True),
            mac_k=base64.b64decode(raw["mac"]["k"], validate=True),
            mac_r=base64.b64decode(raw["mac"]["r"], validate=True),
        )
    except (json.JSONDecodeError, KeyError, TypeError, binascii.Error) as error:
        kind = type(error).__name__
        raise Unsupported(f"restic cat masterkey: not a master key ({kind})") from None
    if (len(key.encrypt), len(key.mac_k), len(key.mac_r)) != (32, 16, 16):
        raise Unsupported("restic cat masterkey: unexpected key lengths")
    return key


def decrypt(key: MasterKey, data: bytes, what: str) -> bytes:
    """Given restic ciphertext (nonce, AES-256-CTR data, MAC), return the plaintext.

    Raise Damaged if it is too short or its MAC does not authenticate it.
    """
    if len(data) < _NONCE + _MAC:
        raise Damaged(f"{what}: {len(data)} bytes, too short to be encrypted data")
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.poly1305 import Poly1305
    except ImportError:
        raise Unsupported("the cryptography package is not installed") from None

    view = memoryview(data)  # the body is not copied (an index file is MiBs)
    nonce, body, tag = data[:_NONCE], view[_NONCE:-_MAC], data[-_MAC:]
    encryptor = Cipher(algorithms.AES(key.mac_k), modes.ECB()).encryptor()  # noqa: S305
    mask = encryptor.update(nonce) + encryptor.finalize()
    mac = Poly1305(key.mac_r + mask)
    mac.update(body)
    try:
        mac.verify(tag)
    except InvalidSignature:
        raise Damaged(f"{what}: its authentication code does not match (damaged data)") from None
    decryptor = Cipher(algorithms.AES(key.encrypt), modes.CTR(nonce)).decryptor()
    plain = decryptor.update(body)
    rest = decryptor.finalize()  # empty: CTR is a stream cipher
    return plain + rest if rest else plain


def _decompress(data: bytes, what: str, size: int) -> bytes:
    """Given a compressed blob and its uncompressed size (from the index), decompress it."""
    try:
        import zstandard  # only a local restore test needs it
    except ImportError:
        raise Unsupported("the zstandard package is not installed") from None

    if size > _MAX_PLAINTEXT:
        raise Unsupported(f"{what}: {size} bytes uncompressed, too large to read here")
    try:
        out = zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    except zstandard.ZstdError as error:
        raise Damaged(f"{what}: cannot be decompressed ({error})") from None
    if len(out) != size:
        raise Damaged(f"{what}: {len(out)} bytes uncompressed, the index says {size}")
    return out


_PIECE = 1 << 20
_SPACE = re.compile(r"[ \t\n\r]*")


def _decompressed_pieces(data: memoryview, what: str) -> Iterator[bytes]:
    """Yield zstd-compressed `data` decompressed, a bounded piece at a time."""
    try:
        import zstandard  # only a local restore test needs it
    except ImportError:
        raise Unsupported("the zstandard package is not installed") from None
    reader = zstandard.ZstdDecompressor().decompressobj()
    try:
        for start in range(0, len(data), _PIECE // 4):
            piece = reader.decompress(data[start:start + _PIECE // 4])
            if piece:
                yield piece
    except zstandard.ZstdError as error:
        raise Damaged(f"{what}: cannot be decompressed ({error})") from None
    if not reader.eof:
        raise Damaged(f"{what}: cannot be decompressed (it ends early)")


class JsonPieces:
    """A JSON object read from text pieces, one member's array an element at a time.

    Only the text not yet parsed is held, plus the element being parsed. Raise
    Damaged if the text is not JSON.
    """

    def __init__(self, pieces: Iterator[str], what: str) -> None:
        self._pieces = pieces
        self._what = what
        self._text = ""
        self._at = 0
        self._decoder = json.JSONDecoder()

    def _more(self) -> bool:
        for piece in self._pieces:
            if piece:
                self._text = self._text[self._at:] + piece
                self._at = 0
                return True
        return False

    def _peek(self) -> str:
        while True:
            self._at = _SPACE.match(self._text, self._at).end()  # type: ignore[union-attr]
            if self._at < len(self._text):
                return self._text[self._at]
            if not self._more():
                return ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise Damaged(f"{self._what}: not JSON (expected {char!r} at offset {self._at})")
        self._at += 1

    def _value(self) -> Any:
        self._peek()
        while True:
            try:
                value, end = self._decoder.raw_decode(self._text, self._at)
            except json.JSONDecodeError as error:
                if self._more():
                    continue
                raise Damaged(f"{self._what}: not JSON ({error})") from None
            # A number may go on in the next piece ("1." then "5"): a value must end
            # well before the text does, or the text has no more pieces.
            if len(self._text) - end < 64 and self._more():
                continue
            self._at = end
            return value

    def members(self, name: str) -> Iterator[Any]:
        """Yield the elements of the array that the object's member `name` holds.

        Raise Damaged if the text is not one JSON object, or it has no such member.
        """
        self._expect("{")
        seen = False
        first = True
        while self._peek() != "}":
            if not first:
                self._expect(",")
            first = False
            key = self._value()
            self._expect(":")
            if key != name:
                self._value()
                continue
            seen = True
            self._expect("[")
            if self._peek() == "]":
                self._at += 1
                continue
            while True:
                yield self._value()
                if self._peek() == "]":
                    self._at += 1
                    break
                self._expect(",")
        self._expect("}")
        if self._peek():
            raise Damaged(f"{self._what}: not JSON (text after the object)")
        if not seen:
            raise Damaged(f"{self._what}: no {name!r} member")


@dataclass(frozen=True)
class BlobPlace:
    """Where a blob is stored: its pack, offset and length, and its uncompressed size."""

    pack: str
    offset: int
    length: int
    uncompressed: int | None


class LocalRepository:
    """A local restic repository's config, index files and tree blobs, read directly."""

    def __init__(self, folder: str, key: MasterKey) -> None:
        self.folder = folder
        self.key = key
        self._trees: dict[str, BlobPlace] | None = None

    def _read(self, *parts: str) -> bytes:
        path = os.path.join(self.folder, *parts)
        try:
            with open(path, "rb") as handle:
                return handle.read(_MAX_PLAINTEXT + _NONCE + _MAC + 1)
        except FileNotFoundError:
            raise Damaged(f"{'/'.join(parts)}: missing from the repository") from None
        except OSError as error:
            raise Unsupported(f"{'/'.join(parts)}: {error.strerror or error}") from None

    def _unpacked(self, kind: str, name: str) -> Any:
        """Return the JSON of an unpacked file (config, snapshots/ID), decompressed if v2."""
        text = "".join(self._text(kind, name))
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            what = f"{kind}/{name}" if kind else name
            raise Damaged(f"{what}: not JSON after decryption ({error})") from None

    def config(self) -> dict[str, Any]:
        """Return the repository's config (its id, version); raise Unsupported/Damaged."""
        config = self._unpacked("", "config")
        if not isinstance(config, dict) or config.get("version") not in (1, 2):
            raise Unsupported("config: an unknown repository version")
        if not isinstance(config.get("id"), str) or not _ID.fullmatch(config["id"]):
            raise Damaged("config: no repository id")
        return config

    def repository_id(self) -> str:
        """Return the repository id, as `restic cat config` shows it."""
        return str(self.config()["id"])

    def snapshots(self) -> tuple[list[dict[str, Any]], list[str]]:
        """Return the snapshot files that load (each with its "id") and the ids that do not.

        A file that fails its hash, authentication or parsing is damaged, as restic
        would skip it; one that vanished while being read (a prune) is neither.
        """
        try:
            names = os.listdir(os.path.join(self.folder, "snapshots"))
        except OSError as error:
            raise Unsupported(f"snapshots: {error.strerror or error}") from None
        loaded: list[dict[str, Any]] = []
        damaged: list[str] = []
        for name in sorted(n for n in names if _ID.fullmatch(n)):
            try:
                raw = self._unpacked("snapshots", name)
                if not isinstance(raw, dict) or not isinstance(raw.get("time"), str):
                    raise Damaged(f"snapshots/{name}: not a snapshot")
            except Damaged as error:
                if not os.path.exists(os.path.join(self.folder, "snapshots", name)):
                    continue
                log.info("snapshot file %s: %s", name[:8], error)
                damaged.append(name)
                continue
            loaded.append({**raw, "id": name})
        return loaded, damaged

    def index_ids(self) -> list[str]:
        """Return the ids of the repository's index files."""
        try:
            names = os.listdir(os.path.join(self.folder, "index"))
        except OSError as error:
            raise Unsupported(f"index: {error.strerror or error}") from None
        return sorted(name for name in names if _ID.fullmatch(name))

    def _text(self, kind: str, name: str) -> Iterator[str]:
        """Yield an unpacked file's JSON text a piece at a time (decompressed if v2).

        The compressed form is held whole; the text never is (an index file of restic's
        holds up to 150,000 blobs: tens of MiB of JSON).
        """
        what = f"{kind}/{name}" if kind else name
        raw = self._read(kind, name) if kind else self._read(name)
        if kind and _ID.fullmatch(name) and hashlib.sha256(raw).hexdigest() != name:
            raise Damaged(f"{what}: its content does not hash to its name (damaged file)")
        plain = decrypt(self.key, raw, what)
        del raw
        decoder = codecs.getincrementaldecoder("utf-8")()
        try:
            if plain[:1] == b"\x02":
                total = 0
                for piece in _decompressed_pieces(memoryview(plain)[1:], what):
                    total += len(piece)
                    if total > _MAX_PLAINTEXT:
                        raise Unsupported(f"{what}: too large to read here")
                    yield decoder.decode(piece)
            elif plain[:1] in (b"{", b"["):
                for start in range(0, len(plain), _PIECE):
                    yield decoder.decode(plain[start:start + _PIECE])
            else:
                raise Unsupported(f"{what}: unknown file format (first byte {plain[:1]!r})")
            yield decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise Damaged(f"{what}: not text after decryption ({error})") from None

    def read_index(self, index_id: str) -> tuple[set[str], dict[str, BlobPlace]]:
        """Given an index file, return the packs it references and where its tree blobs are.

        The file is parsed a pack at a time: its data blobs are never all held.
        """
        what = f"index/{index_id}"
        packs: set[str] = set()
        trees: dict[str, BlobPlace] = {}
        try:
            for pack in JsonPieces(self._text("index", index_id), what).members("packs"):
                pack_id = pack["id"]
                if not isinstance(pack_id, str) or not _ID.fullmatch(pack_id):
                    raise ValueError("a pack id")
                packs.add(pack_id)
                for blob in pack.get("blobs") or ():
                    if blob["type"] != "tree":
                        continue
                    ulen = blob.get("uncompressed_length")
                    trees[blob["id"]] = BlobPlace(
                        pack_id, int(blob["offset"]), int(blob["length"]),
                        int(ulen) if ulen else None,
                    )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise Damaged(f"{what}: not a restic index ({error})") from None
        return packs, trees

    def load_index(self) -> list[set[str]]:
        """Read every index file; keep where tree blobs are; return each file's packs."""
        pack_sets: list[set[str]] = []
        trees: dict[str, BlobPlace] = {}
        for index_id in self.index_ids():
            packs, places = self.read_index(index_id)
            pack_sets.append(packs)
            trees.update(places)
        self._trees = trees
        return pack_sets

    def tree(self, tree_id: str) -> str:
        """Given a tree blob's id, return its JSON text (as `restic cat blob` prints it).

        Raise Damaged if it is in no index, its pack is missing or short, or its
        content fails authentication or its hash.
        """
        if self._trees is None:
            raise Unsupported("the index was not loaded")
        place = self._trees.get(tree_id)
        what = f"tree {tree_id[:8]}"
        if place is None:
            raise Damaged(f"{what}: in no index")
        if place.length > _MAX_PLAINTEXT:
            raise Unsupported(f"{what}: too large to read here")
        path = os.path.join(self.folder, "data", place.pack[:2], place.pack)
        try:
            with open(path, "rb") as handle:
                handle.seek(place.offset)
                data = handle.read(place.length)
        except FileNotFoundError:
            raise Damaged(f"{what}: its pack {place.pack[:12]} is missing") from None
        except OSError as error:
            raise Unsupported(f"{what}: {error.strerror or error}") from None
        if len(data) != place.length:
            raise Damaged(f"{what}: its pack {place.pack[:12]} is shorter than the index says")
        plain = decrypt(self.key, data, what)
        if place.uncompressed is not None:
            plain = _decompress(plain, what, place.uncompressed)
        if hashlib.sha256(plain).hexdigest() != tree_id:
            raise Damaged(f"{what}: its content does not hash to its id (damaged data)")
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:
            raise Damaged(f"{what}: not text") from None
