"""ANS-104 data items: the signed envelope every AO message, process and module travels in.

Layout, Avro tag encoding and the 8-blob SHA-384 deep hash follow the deployed
implementations (arbundles, the ao SU), so items made elsewhere parse and verify
here and items we sign verify there. id = base64url(sha256(signature)).
"""

from __future__ import annotations

import binascii
import hashlib
import struct
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIG_RSA = 1
SIG_ED25519 = 2
# signature type -> (signature length, owner length)
SIG_CONFIG: dict[int, tuple[int, int]] = {SIG_RSA: (512, 512), SIG_ED25519: (64, 32)}
MAX_TAG_BYTES = 4096
MAX_TAGS = 128
MAX_TAG_NAME = 1024
MAX_TAG_VALUE = 3072

Tag = tuple[str, str]


class ANS104Error(ValueError):
    """A data item that is malformed, inconsistent or wrongly signed."""


_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def b64url(raw: bytes) -> str:
    """base64url without padding (Arweave's encoding of ids, owners and keys)."""
    return binascii.b2a_base64(raw, newline=False).rstrip(b"=").translate(_URLSAFE).decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Inverse of b64url; accepts missing padding."""
    if not isinstance(text, str):
        raise ANS104Error(f"expected a base64url string, got {type(text).__name__}")
    try:   # binascii directly: what base64.urlsafe_b64decode does, without its wrappers (ids are decoded a lot)
        raw = text.encode("ascii").translate(_FROM_URLSAFE)
        return binascii.a2b_base64(raw + b"=" * (-len(raw) % 4))
    except (ValueError, TypeError) as exc:
        raise ANS104Error(f"not base64url: {text[:60]!r}") from exc


def id_bytes(ident: str, what: str = "id") -> bytes:
    """Decode a 43-char base64url id to its 32 raw bytes, with a clear error otherwise."""
    raw = b64url_decode(ident) if isinstance(ident, str) and len(ident) == 43 else b""
    if len(raw) != 32:
        raise ANS104Error(f"{what} must be a 43-character base64url id of 32 bytes, got {ident!r}")
    return raw


# -- deep hash -----------------------------------------------------------------

def _sha384(data: bytes) -> bytes:
    return hashlib.sha384(data).digest()


def deep_hash_blob(data: bytes) -> bytes:
    """Deep hash of one byte string: H(H("blob"+len) || H(data))."""
    return _sha384(_sha384(b"blob" + str(len(data)).encode()) + _sha384(data))


def deep_hash(value: bytes | list) -> bytes:
    """Arweave 2.0 deep hash (SHA-384) of a byte string or a nested list of them."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return deep_hash_blob(bytes(value))
    acc = _sha384(b"list" + str(len(value)).encode())
    for child in value:
        acc = _sha384(acc + deep_hash(child))
    return acc


_LIST8 = _sha384(b"list8")
_DATAITEM = deep_hash_blob(b"dataitem")
_ONE = deep_hash_blob(b"1")
_EMPTY = deep_hash_blob(b"")
_PREFIX_CACHE: dict[tuple[int, bytes], bytes] = {}


def signature_data(sig_type: int, owner: bytes, target: bytes, anchor: bytes, raw_tags: bytes, data: bytes) -> bytes:
    """The 48-byte message a data item's signature covers (deep hash of the 8 blobs)."""
    key = (sig_type, owner)
    acc = _PREFIX_CACHE.get(key)
    if acc is None:
        acc = _sha384(_LIST8 + _DATAITEM)
        acc = _sha384(acc + _ONE)
        acc = _sha384(acc + deep_hash_blob(str(sig_type).encode()))
        acc = _sha384(acc + deep_hash_blob(owner))
        if len(_PREFIX_CACHE) < 64:
            _PREFIX_CACHE[key] = acc
    sha = hashlib.sha384
    lens = _BLOB_LEN
    known = _BLOB_HASH
    for i, blob in enumerate((target, anchor, raw_tags, data)):
        h = known.get(blob) if i != 1 and len(blob) <= 32 else None
        if h is None:
            n = len(blob)
            head = lens.get(n)
            if head is None:
                head = sha(b"blob%d" % n).digest()
                if n < 4096:
                    lens[n] = head
            h = sha(head + sha(blob).digest()).digest()
            if i != 1 and n <= 32:   # targets (process ids) and empty data repeat; anchors rarely do
                if len(known) > 4096:
                    known.clear()
                known[blob] = h
        acc = sha(acc + h).digest()
    return acc


_BLOB_LEN: dict[int, bytes] = {}
_BLOB_HASH: dict[bytes, bytes] = {}


# -- Avro tags -------------------------------------------------------------------

def _write_long(out: bytearray, n: int) -> None:
    z = (n << 1) ^ (n >> 63)
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)


_PAIR_CACHE: dict[tuple[str, str], bytes] = {}


def _encode_pair(name: str, value: str) -> bytes:
    out = bytearray()
    for text in (name, value):
        raw = text.encode("utf-8")
        _write_long(out, len(raw))
        out += raw
    return bytes(out)


def encode_tags(tags: list[Tag] | tuple[Tag, ...]) -> bytes:
    """Avro-encode tags as arbundles does: one block, a 0 terminator; nothing at all for no tags."""
    if not tags:
        return b""
    out = bytearray()
    _write_long(out, len(tags))
    cache = _PAIR_CACHE
    for pair in tags:
        enc = cache.get(pair)
        if enc is None:
            enc = _encode_pair(*pair)
            if pair[0] and pair[1] and len(pair[0]) <= MAX_TAG_NAME // 4 and len(pair[1]) <= MAX_TAG_VALUE // 4:
                if len(cache) > 8192:
                    cache.clear()
                cache[pair] = enc   # only pairs that pass check_tags whatever their characters
        out += enc
    out.append(0)
    return bytes(out)


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    shift = 0
    z = 0
    while True:
        if pos >= len(buf):
            raise ANS104Error("tag bytes end inside a number")
        b = buf[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift > 63:
            raise ANS104Error("tag bytes hold a number longer than 64 bits")
    return (z >> 1) ^ -(z & 1), pos


def decode_tags(buf: bytes) -> list[Tag]:
    """Decode Avro tag bytes (several blocks and negative block counts accepted)."""
    tags: list[Tag] = []
    if not buf:
        return tags
    pos = 0
    while True:
        count, pos = _read_long(buf, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _size, pos = _read_long(buf, pos)
        for _ in range(count):
            pair = []
            for _part in range(2):
                length, pos = _read_long(buf, pos)
                if length < 0 or pos + length > len(buf):
                    raise ANS104Error("tag bytes end inside a tag string")
                try:
                    pair.append(buf[pos:pos + length].decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise ANS104Error("a tag is not valid UTF-8") from exc
                pos += length
            tags.append((pair[0], pair[1]))
    if pos != len(buf):
        raise ANS104Error(f"{len(buf) - pos} stray bytes after the tag list")
    return tags


def check_tags(tags: list[Tag] | tuple[Tag, ...]) -> None:
    """Enforce the ANS-104 tag limits (count, name/value sizes, no empty strings)."""
    if len(tags) > MAX_TAGS:
        raise ANS104Error(f"too many tags: {len(tags)} (at most {MAX_TAGS})")
    for tag in tags:
        if tag in _PAIR_CACHE:
            continue   # already checked and encoded
        if not (isinstance(tag, tuple) and len(tag) == 2 and isinstance(tag[0], str) and isinstance(tag[1], str)):
            raise ANS104Error(f"a tag must be a (name, value) pair of strings, got {tag!r}")
        name, value = tag
        if not name or not value:
            raise ANS104Error(f"tag names and values must not be empty: {name!r}={value!r}")
        if len(name.encode()) > MAX_TAG_NAME:
            raise ANS104Error(f"tag name longer than {MAX_TAG_NAME} bytes: {name[:40]!r}...")
        if len(value.encode()) > MAX_TAG_VALUE:
            raise ANS104Error(f"tag {name!r} has a value longer than {MAX_TAG_VALUE} bytes")


# -- the item --------------------------------------------------------------------

@dataclass
class DataItem:
    """A parsed or built ANS-104 data item; `raw` holds its exact bytes."""

    signature_type: int
    signature: bytes
    owner: bytes
    target: bytes = b""
    anchor: bytes = b""
    tags: list[Tag] = field(default_factory=list)
    data: bytes = b""
    raw_tags: bytes = b""
    raw: bytes = b""

    @cached_property
    def id(self) -> str:
        return b64url(hashlib.sha256(self.signature).digest())

    @cached_property
    def owner_address(self) -> str:
        return b64url(hashlib.sha256(self.owner).digest())

    @cached_property
    def target_id(self) -> str | None:
        return b64url(self.target) if self.target else None

    def tag(self, name: str, default: str | None = None) -> str | None:
        """First value of tag `name`."""
        for n, v in self.tags:
            if n == name:
                return v
        return default

    def signature_data(self) -> bytes:
        return signature_data(self.signature_type, self.owner, self.target, self.anchor, self.raw_tags, self.data)

    def verify(self) -> None:
        """Raise ANS104Error unless the signature is valid for the item's contents."""
        verify_signature(self.signature_type, self.owner, self.signature, self.signature_data())


def serialize(sig_type: int, signature: bytes, owner: bytes, target: bytes, anchor: bytes,
              raw_tags: bytes, tag_count: int, data: bytes) -> bytes:
    """Write the binary layout (all integers little-endian)."""
    parts = [struct.pack("<H", sig_type), signature, owner]
    parts.append(b"\x01" + target if target else b"\x00")
    parts.append(b"\x01" + anchor if anchor else b"\x00")
    parts.append(struct.pack("<QQ", tag_count, len(raw_tags)))
    parts.append(raw_tags)
    parts.append(data)
    return b"".join(parts)


def parse(raw: bytes) -> DataItem:
    """Parse item bytes; raises ANS104Error naming what is wrong. Does not verify the signature."""
    raw = bytes(raw)
    if len(raw) < 2:
        raise ANS104Error(f"data item too short ({len(raw)} bytes)")
    sig_type = struct.unpack_from("<H", raw, 0)[0]
    if sig_type not in SIG_CONFIG:
        raise ANS104Error(f"unknown signature type {sig_type}")
    sig_len, owner_len = SIG_CONFIG[sig_type]
    pos = 2
    if len(raw) < pos + sig_len + owner_len + 2 + 16:
        raise ANS104Error(f"data item truncated: {len(raw)} bytes is shorter than a type-{sig_type} header")
    signature = raw[pos:pos + sig_len]
    pos += sig_len
    owner = raw[pos:pos + owner_len]
    pos += owner_len
    fields: list[bytes] = []
    for what in ("target", "anchor"):
        if pos >= len(raw):
            raise ANS104Error(f"data item truncated at the {what} presence byte")
        flag = raw[pos]
        pos += 1
        if flag == 0:
            fields.append(b"")
        elif flag == 1:
            if pos + 32 > len(raw):
                raise ANS104Error(f"data item truncated inside the {what}")
            fields.append(raw[pos:pos + 32])
            pos += 32
        else:
            raise ANS104Error(f"{what} presence byte is {flag} (must be 0 or 1)")
    if pos + 16 > len(raw):
        raise ANS104Error("data item truncated inside the tag counters")
    tag_count, tag_len = struct.unpack_from("<QQ", raw, pos)
    pos += 16
    if tag_len > MAX_TAG_BYTES:
        raise ANS104Error(f"tag bytes length {tag_len} exceeds {MAX_TAG_BYTES}")
    if pos + tag_len > len(raw):
        raise ANS104Error(f"data item truncated: header declares {tag_len} tag bytes, {len(raw) - pos} remain")
    raw_tags = raw[pos:pos + tag_len]
    pos += tag_len
    tags = decode_tags(raw_tags)
    if len(tags) != tag_count:
        raise ANS104Error(f"tag count mismatch: header says {tag_count}, tag bytes hold {len(tags)}")
    return DataItem(sig_type, signature, owner, fields[0], fields[1], tags, raw[pos:], raw_tags, raw)


def parse_and_verify(raw: bytes) -> DataItem:
    """Parse and verify; the one call for bytes from outside."""
    item = parse(raw)
    item.verify()
    return item


def rsa_public_key(owner: bytes) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(65537, int.from_bytes(owner, "big")).public_key()


_PSS_AUTO = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)


def verify_signature(sig_type: int, owner: bytes, signature: bytes, message: bytes) -> None:
    """Check a signature (RSA-PSS with any salt length, or Ed25519)."""
    try:
        if sig_type == SIG_RSA:
            rsa_public_key(owner).verify(signature, message, _PSS_AUTO, hashes.SHA256())
        elif sig_type == SIG_ED25519:
            Ed25519PublicKey.from_public_bytes(owner).verify(signature, message)
        else:
            raise ANS104Error(f"unknown signature type {sig_type}")
    except InvalidSignature:
        raise ANS104Error("invalid signature: it does not match the item's contents and owner") from None
    except ValueError as exc:
        if isinstance(exc, ANS104Error):
            raise
        raise ANS104Error(f"invalid owner key: {exc}") from None


def build(signer, *, target: str | bytes | None = None, anchor: str | bytes | None = None,
          tags: list[Tag] | tuple[Tag, ...] = (), data: str | bytes = b"") -> DataItem:
    """Build and sign an item with `signer` (a Wallet: signature_type, owner, sign(msg))."""
    tags = [t if type(t) is tuple else tuple(t) for t in tags]
    check_tags(tags)
    tgt = b""
    if target:
        tgt = target if isinstance(target, bytes) else id_bytes(target, "target")
        if len(tgt) != 32:
            raise ANS104Error("target must be 32 bytes")
    anc = b""
    if anchor:
        anc = anchor if isinstance(anchor, bytes) else anchor.encode("utf-8")
        if len(anc) != 32:
            raise ANS104Error(f"anchor must be exactly 32 bytes, got {len(anc)}")
    body = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    raw_tags = encode_tags(tags)
    if len(raw_tags) > MAX_TAG_BYTES:
        raise ANS104Error(f"tags encode to {len(raw_tags)} bytes (at most {MAX_TAG_BYTES})")
    owner = signer.owner
    sig = signer.sign(signature_data(signer.signature_type, owner, tgt, anc, raw_tags, body))
    raw = serialize(signer.signature_type, sig, owner, tgt, anc, raw_tags, len(tags), body)
    item = DataItem(signer.signature_type, sig, owner, tgt, anc, tags, body, raw_tags, raw)
    known = item.__dict__     # fill the cached properties we already know
    known["id"] = b64url(hashlib.sha256(sig).digest())
    known["owner_address"] = signer.address
    if tgt:
        known["target_id"] = target if isinstance(target, str) else b64url(tgt)
    return item
