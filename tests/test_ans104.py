"""ANS-104 interop: the reference library's vectors parse, verify and rebuild; our items verify."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aos_py.node import ans104
from aos_py.node.ans104 import ANS104Error, b64url
from aos_py.node.wallet import Wallet

VEC = Path(__file__).parent / "vectors" / "ans104"
MANIFEST = json.loads((VEC / "manifest.json").read_text(encoding="utf-8"))
VALID = [i for i in MANIFEST["items"] if i["valid"]]
INVALID = [i for i in MANIFEST["items"] if not i["valid"]]
RSA = Wallet.from_jwk(json.loads((VEC / "test-wallet.json").read_text()))
ED = Wallet.from_jwk(json.loads((VEC / "test-ed25519.json").read_text()))


def _b64(raw: bytes) -> str | None:
    return b64url(raw) if raw else None


def test_vector_set_is_complete():
    assert len(VALID) == 17 and len(INVALID) == 6


@pytest.mark.parametrize("entry", VALID, ids=[i["file"] for i in VALID])
def test_valid_vector_parses_with_manifest_fields(entry):
    raw = (VEC / entry["file"]).read_bytes()
    assert len(raw) == entry["size"] and hashlib.sha256(raw).hexdigest() == entry["file_sha256"]
    item = ans104.parse(raw)
    assert item.signature_type == entry["signature_type"]
    assert item.id == entry["id"]
    assert b64url(item.signature) == entry["signature"]
    assert b64url(item.owner) == entry["owner"]
    assert item.owner_address == entry["owner_address"]
    assert _b64(item.target) == entry["target"]
    assert _b64(item.anchor) == entry["anchor"]
    if entry["anchor_utf8"] is not None:
        assert item.anchor.decode("utf-8") == entry["anchor_utf8"]
    assert len(item.tags) == entry["tag_count"]
    assert len(item.raw_tags) == entry["tags_bytes_length"]
    assert item.tags == [(t["name"], t["value"]) for t in entry["tags"]]
    assert len(item.data) == entry["data_length"]
    assert hashlib.sha256(item.data).hexdigest() == entry["data_sha256"]
    assert item.signature_data().hex() == entry["signature_data_sha256"]
    item.verify()


@pytest.mark.parametrize("entry", VALID, ids=[i["file"] for i in VALID])
def test_valid_vector_rebuilds_byte_for_byte(entry):
    raw = (VEC / entry["file"]).read_bytes()
    item = ans104.parse(raw)
    tags = [(t["name"], t["value"]) for t in entry["tags"]]
    raw_tags = ans104.encode_tags(tags)
    rebuilt = ans104.serialize(item.signature_type, item.signature, item.owner, item.target, item.anchor,
                               raw_tags, len(tags), item.data)
    assert rebuilt == raw
    if item.signature_type == ans104.SIG_ED25519:   # deterministic: re-signing gives the same file
        again = ans104.build(ED, target=item.target or None, anchor=item.anchor or None, tags=tags, data=item.data)
        assert again.raw == raw and again.id == entry["id"]


def test_rsa_salt_lengths_in_vectors():
    salts = {i["file"]: i.get("rsa_pss_salt_length") for i in VALID if i["signature_type"] == 1}
    assert salts["10-rsa-pss-salt32.bin"] == 32 and salts["01-rsa-empty.bin"] == 478


EXPECTED_ERRORS = {
    "51-invalid-data-byte-flipped.bin": "invalid signature",
    "52-invalid-signature-byte-flipped.bin": "invalid signature",
    "53-invalid-truncated.bin": "truncated",
    "54-invalid-tag-count-mismatch.bin": "tag count mismatch",
    "55-invalid-signature-type.bin": "unknown signature type 256",
    "56-invalid-anchor-length.bin": "tag bytes length",
}


@pytest.mark.parametrize("entry", INVALID, ids=[i["file"] for i in INVALID])
def test_invalid_vector_rejected_for_the_right_reason(entry):
    raw = (VEC / entry["file"]).read_bytes()
    with pytest.raises(ANS104Error, match=EXPECTED_ERRORS[entry["file"]]):
        ans104.parse_and_verify(raw)


def test_tag_count_mismatch_has_a_valid_signature_so_only_the_count_check_catches_it():
    raw = bytearray((VEC / "54-invalid-tag-count-mismatch.bin").read_bytes())
    # put the right count back: the item then parses and verifies
    off = 2 + 512 + 512 + 1 + 1
    raw[off:off + 8] = (3).to_bytes(8, "little")
    ans104.parse_and_verify(bytes(raw))


@pytest.mark.parametrize("signer", ["rsa-max", "rsa-32", "ed25519"])
def test_items_we_sign_verify(signer):
    wallet = {"rsa-max": RSA, "rsa-32": RSA.with_salt(32), "ed25519": ED}[signer]
    target = VALID[0]["owner_address"]
    item = ans104.build(wallet, target=target, anchor="a" * 32, data=b"\x00hello\xff",
                        tags=[("Action", "Eval"), ("Name", "Zoë ✓ 𝄞")])
    parsed = ans104.parse_and_verify(item.raw)
    assert parsed.id == item.id == b64url(hashlib.sha256(item.signature).digest())
    assert parsed.target_id == target and parsed.anchor == b"a" * 32
    assert parsed.tags == [("Action", "Eval"), ("Name", "Zoë ✓ 𝄞")] and parsed.data == b"\x00hello\xff"
    assert parsed.owner_address == wallet.address


def test_rsa_salt32_signature_is_not_a_max_salt_signature():
    msg = b"m" * 48
    sig32 = RSA.with_salt(32).sign(msg)
    ans104.verify_signature(1, RSA.owner, sig32, msg)   # AUTO accepts it
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding
    pss478 = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=478)
    with pytest.raises(InvalidSignature):
        ans104.rsa_public_key(RSA.owner).verify(sig32, msg, pss478, hashes.SHA256())


def test_tampering_with_a_built_item_is_detected():
    item = ans104.build(ED, tags=[("A", "1")], data="x")
    bad = bytearray(item.raw)
    bad[-1] ^= 1
    with pytest.raises(ANS104Error, match="invalid signature"):
        ans104.parse_and_verify(bytes(bad))


@pytest.mark.parametrize("tags, why", [
    ([("", "v")], "must not be empty"),
    ([("n", "")], "must not be empty"),
    ([("n", "v")] * 129, "too many tags"),
    ([("n" * 1025, "v")], "tag name longer"),
    ([("n", "v" * 3073)], "value longer"),
])
def test_bad_tags_refused_when_building(tags, why):
    with pytest.raises(ANS104Error, match=why):
        ans104.build(ED, tags=tags)


def test_bad_target_and_anchor_refused():
    with pytest.raises(ANS104Error, match="43-character"):
        ans104.build(ED, target="short")
    with pytest.raises(ANS104Error, match="exactly 32 bytes"):
        ans104.build(ED, anchor="abc")


def test_presence_byte_other_than_0_or_1_rejected():
    raw = bytearray((VEC / "11-ed25519-empty.bin").read_bytes())
    raw[2 + 64 + 32] = 2
    with pytest.raises(ANS104Error, match="presence byte is 2"):
        ans104.parse(bytes(raw))


def test_avro_reader_accepts_negative_block_counts():
    # block of -2 entries with a byte size, then terminator
    body = ans104.encode_tags([("a", "b"), ("c", "d")])[1:-1]
    buf = bytes([3]) + bytes([len(body) * 2]) + body + b"\x00"   # zigzag(-2) = 3
    assert ans104.decode_tags(buf) == [("a", "b"), ("c", "d")]


def test_deep_hash_of_nested_list_matches_definition():
    h = hashlib.sha384
    blob = lambda b: h(h(b"blob" + str(len(b)).encode()).digest() + h(b).digest()).digest()  # noqa: E731
    acc = h(b"list2").digest()
    acc = h(acc + blob(b"x")).digest()
    inner = h(h(b"list0").digest()).digest() if False else h(b"list0").digest()
    acc = h(acc + inner).digest()
    assert ans104.deep_hash([b"x", []]) == acc
