"""Wallet files: aos-compatible JWKs, addresses, created once and never overwritten."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aos_py.node.ans104 import b64url, b64url_decode
from aos_py.node.wallet import Wallet, WalletError, load_wallet

VEC = Path(__file__).parent / "vectors"


def test_address_is_sha256_of_modulus():
    jwk = json.loads((VEC / "ans104" / "test-wallet.json").read_text())
    w = load_wallet(VEC / "ans104" / "test-wallet.json", create=False)
    assert w.address == b64url(hashlib.sha256(b64url_decode(jwk["n"])).digest())
    manifest = json.loads((VEC / "ans104" / "manifest.json").read_text())
    assert w.address == manifest["items"][0]["owner_address"]
    assert len(w.address) == 43


def test_existing_wallet_is_read_not_overwritten(tmp_path):
    p = tmp_path / "w.json"
    src = (VEC / "wallet-a.json").read_text()
    p.write_text(src)
    w = load_wallet(p)
    assert p.read_text() == src
    assert w.jwk == json.loads(src)


def test_env_var_selects_the_wallet(tmp_path, monkeypatch):
    p = tmp_path / "env.json"
    p.write_text((VEC / "wallet-b.json").read_text())
    monkeypatch.setenv("AOS_WALLET", str(p))
    assert load_wallet().address == load_wallet(VEC / "wallet-b.json").address


def test_created_on_first_use_then_stable(tmp_path):
    p = tmp_path / "sub" / "new.json"
    w1 = load_wallet(p)
    assert p.exists() and (p.stat().st_mode & 0o777) == 0o600
    jwk = json.loads(p.read_text())
    assert jwk["kty"] == "RSA" and len(b64url_decode(jwk["n"])) == 512
    assert load_wallet(p).address == w1.address


def test_create_false_on_missing_file(tmp_path):
    with pytest.raises(WalletError, match="no wallet"):
        load_wallet(tmp_path / "none.json", create=False)


@pytest.mark.parametrize("content, why", [
    ("not json", "cannot read wallet"),
    ('{"kty": "EC"}', "unsupported JWK"),
    ('{"kty": "RSA", "e": "AQAB"}', "missing field 'n'"),
])
def test_bad_wallet_files_give_clear_errors(tmp_path, content, why):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(WalletError, match=why):
        load_wallet(p)
    assert p.read_text() == content


def test_ed25519_jwk_roundtrip():
    w = Wallet.generate("ed25519")
    again = Wallet.from_jwk(w.jwk)
    assert again.address == w.address and again.sign(b"x") == w.sign(b"x")


def test_ed25519_signatures_match_the_reference_library():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    seed = bytes(range(32))
    ours = Wallet.from_ed25519_seed(seed)
    ref = Ed25519PrivateKey.from_private_bytes(seed)
    for msg in (b"", b"x" * 48, bytes(range(256))):
        assert ours.sign(msg) == ref.sign(msg)
