"""Wallets: Arweave RSA-4096 JWK files (what aos uses) and Ed25519 keys (what the node signs with).

The address is base64url(sha256(owner bytes)) for both kinds, as the AO SU derives it.
A wallet file is created on first use and never overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from aos_py.node.ans104 import SIG_ED25519, SIG_RSA, b64url, b64url_decode

try:  # libsodium signs Ed25519 about 1.7x faster than OpenSSL here; RFC 8032 makes the bytes identical
    from nacl._sodium import ffi as _ffi
    from nacl._sodium import lib as _lib
    from nacl.bindings import crypto_sign as _sodium_sign

    def _sodium_sign_detached(message: bytes, secret: bytes) -> bytes:
        """The 64-byte signature alone, straight from libsodium (no wrapper checks or copies)."""
        out = _ffi.new("unsigned char[]", len(message) + 64)
        if _lib.crypto_sign(out, _ffi.NULL, message, len(message), secret) != 0:
            raise WalletError("libsodium failed to sign")
        return _ffi.buffer(out, 64)[:]
except ImportError:  # pragma: no cover - pynacl is a dependency; cryptography is the fallback
    _sodium_sign = None

DEFAULT_WALLET = "~/.aos.json"
SALT_MAX = padding.PSS.MAX_LENGTH


class WalletError(ValueError):
    """A wallet file that cannot be read or used."""


def _int(jwk: dict, name: str) -> int:
    value = jwk.get(name)
    if not isinstance(value, str) or not value:
        raise WalletError(f"JWK is missing field {name!r}")
    return int.from_bytes(b64url_decode(value), "big")


def _b64int(n: int) -> str:
    return b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))


class Wallet:
    """A signing key with its owner bytes and address."""

    def __init__(self, key: rsa.RSAPrivateKey | Ed25519PrivateKey, jwk: dict | None = None,
                 path: Path | None = None, salt_length: int = SALT_MAX) -> None:
        self.key = key
        self.path = path
        self.salt_length = salt_length
        if isinstance(key, rsa.RSAPrivateKey):
            self.signature_type = SIG_RSA
            n = key.public_key().public_numbers().n
            if key.key_size != 4096:
                raise WalletError(f"Arweave wallets are RSA-4096; this key has {key.key_size} bits")
            self.owner = n.to_bytes(512, "big")
            self._pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)
        elif isinstance(key, Ed25519PrivateKey):
            self.signature_type = SIG_ED25519
            self.owner = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            if _sodium_sign is not None:
                seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption())
                self._sodium_key = seed + self.owner
        else:
            raise WalletError(f"unsupported key type {type(key).__name__}")
        self.address = b64url(hashlib.sha256(self.owner).digest())
        self._jwk = jwk

    def sign(self, message: bytes) -> bytes:
        """Sign the 48-byte deep hash of an item (RSA-PSS SHA-256, or Ed25519)."""
        if self.signature_type == SIG_RSA:
            return self.key.sign(message, self._pss, hashes.SHA256())
        if _sodium_sign is not None:
            return _sodium_sign_detached(message, self._sodium_key)
        return self.key.sign(message)

    def with_salt(self, salt_length: int) -> Wallet:
        """The same RSA key signing with another PSS salt length (32 is what browser wallets use)."""
        return Wallet(self.key, self._jwk, self.path, salt_length)

    @property
    def jwk(self) -> dict:
        if self._jwk is None:
            self._jwk = to_jwk(self.key)
        return dict(self._jwk)

    def __repr__(self) -> str:
        return f"Wallet({self.address})"

    @classmethod
    def generate(cls, kind: str = "rsa") -> Wallet:
        """A new key: 'rsa' (RSA-4096, about a second) or 'ed25519'."""
        if kind == "rsa":
            return cls(rsa.generate_private_key(public_exponent=65537, key_size=4096))
        if kind == "ed25519":
            return cls(Ed25519PrivateKey.generate())
        raise WalletError(f"unknown wallet kind {kind!r} (rsa or ed25519)")

    @classmethod
    def from_ed25519_seed(cls, seed: bytes) -> Wallet:
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def from_jwk(cls, jwk: dict, path: Path | None = None) -> Wallet:
        """Key from an Arweave RSA JWK or an RFC 8037 OKP Ed25519 JWK."""
        if not isinstance(jwk, dict):
            raise WalletError("a JWK must be a JSON object")
        kty = jwk.get("kty")
        if kty == "RSA":
            if _int(jwk, "e") != 65537:
                raise WalletError("Arweave RSA keys use e = 65537")
            pub = rsa.RSAPublicNumbers(65537, _int(jwk, "n"))
            try:
                key = rsa.RSAPrivateNumbers(
                    p=_int(jwk, "p"), q=_int(jwk, "q"), d=_int(jwk, "d"), dmp1=_int(jwk, "dp"),
                    dmq1=_int(jwk, "dq"), iqmp=_int(jwk, "qi"), public_numbers=pub).private_key()
            except ValueError as exc:
                raise WalletError(f"inconsistent RSA JWK: {exc}") from None
            return cls(key, jwk, path)
        if kty == "OKP" and jwk.get("crv") == "Ed25519":
            seed = b64url_decode(jwk.get("d", ""))
            if len(seed) != 32:
                raise WalletError("Ed25519 JWK field 'd' must hold 32 bytes")
            return cls(Ed25519PrivateKey.from_private_bytes(seed), jwk, path)
        raise WalletError(f"unsupported JWK (kty={kty!r}); expected an Arweave RSA or an Ed25519 OKP key")


def to_jwk(key: rsa.RSAPrivateKey | Ed25519PrivateKey) -> dict:
    """Serialise a key the way Arweave (RSA) or RFC 8037 (Ed25519) writes it."""
    if isinstance(key, Ed25519PrivateKey):
        seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
        pub = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "d": b64url(seed), "x": b64url(pub)}
    priv = key.private_numbers()
    pub = priv.public_numbers
    return {"kty": "RSA", "n": _b64int(pub.n), "e": _b64int(pub.e), "d": _b64int(priv.d), "p": _b64int(priv.p),
            "q": _b64int(priv.q), "dp": _b64int(priv.dmp1), "dq": _b64int(priv.dmq1), "qi": _b64int(priv.iqmp)}


def wallet_path(path: str | Path | None = None) -> Path:
    """The wallet file: `path`, else $AOS_WALLET, else ~/.aos.json."""
    if path is None:
        path = os.environ.get("AOS_WALLET") or DEFAULT_WALLET
    return Path(path).expanduser()


def load_wallet(path: str | Path | None = None, *, create: bool = True) -> Wallet:
    """Read the JWK at `path` (default ~/.aos.json); make a new RSA-4096 one there if it does not exist."""
    p = wallet_path(path)
    if p.exists():
        try:
            jwk = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise WalletError(f"cannot read wallet {p}: {exc}") from None
        return Wallet.from_jwk(jwk, p)
    if not create:
        raise WalletError(f"no wallet at {p}")
    wallet = Wallet.generate("rsa")
    p.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(wallet.jwk)
    try:
        # O_EXCL: never overwrite a wallet another process wrote in the meantime
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_wallet(p, create=False)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    wallet.path = p
    return wallet


def load_node_key(path: Path) -> Wallet:
    """The node's own Ed25519 key (its MU/SU signer and the processes' Authority), made once."""
    if path.exists():
        try:
            return Wallet.from_jwk(json.loads(path.read_text(encoding="utf-8")), path)
        except (OSError, ValueError) as exc:
            raise WalletError(f"cannot read the node key {path}: {exc}") from None
    w = Wallet.generate("ed25519")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_node_key(path)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(w.jwk, fh)
        fh.flush()
        os.fsync(fh.fileno())
    return w
