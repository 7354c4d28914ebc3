"""A plain Python ISAAC (Bob Jenkins' published algorithm) used as the reference
for the Lua implementation; checked against Jenkins' own test vector in the tests."""

from __future__ import annotations

M = 0xFFFFFFFF


class Isaac:
    """ISAAC seeded the aos way: one seed word per byte of a string."""

    def __init__(self, seed: bytes | None) -> None:
        self.mm = [0] * 256
        self.aa = self.bb = self.cc = 0
        self.rsl = list(seed[:256]) + [0] * (256 - len(seed[:256])) if seed is not None else [0] * 256
        self.cnt = 0
        self._init(seed is not None)

    def generate(self) -> None:
        self.cc = (self.cc + 1) & M
        self.bb = (self.bb + self.cc) & M
        for i in range(256):
            x = self.mm[i]
            k = i & 3
            if k == 0:
                self.aa ^= (self.aa << 13) & M
            elif k == 1:
                self.aa ^= self.aa >> 6
            elif k == 2:
                self.aa ^= (self.aa << 2) & M
            else:
                self.aa ^= self.aa >> 16
            self.aa = (self.mm[(i + 128) & 255] + self.aa) & M
            y = (self.mm[(x >> 2) & 255] + self.aa + self.bb) & M
            self.mm[i] = y
            self.bb = (self.mm[(y >> 10) & 255] + x) & M
            self.rsl[i] = self.bb
        self.cnt = 0

    def _init(self, use_seed: bool) -> None:
        a = [0x9E3779B9] * 8
        shifts = (11, -2, 8, -16, 10, -4, 8, -9)

        def mix() -> None:
            for j, s in enumerate(shifts):
                nxt = a[(j + 1) & 7]
                a[j] ^= (nxt << s) & M if s > 0 else nxt >> -s
                a[(j + 3) & 7] = (a[(j + 3) & 7] + a[j]) & M
                a[(j + 1) & 7] = (nxt + a[(j + 2) & 7]) & M

        for _ in range(4):
            mix()
        for src in ([self.rsl, self.mm] if use_seed else [None]):
            for i in range(0, 256, 8):
                if src is not None:
                    for j in range(8):
                        a[j] = (a[j] + src[i + j]) & M
                mix()
                self.mm[i:i + 8] = a
        self.generate()

    def next(self) -> int:
        r = self.rsl[self.cnt]
        self.cnt += 1
        if self.cnt > 255:
            self.generate()
        return r


def encrypt(msg: bytes, key: bytes) -> bytes:
    """The aos ISAAC cipher: each printable character shifted by (rand % 95 + 32), mod 95."""
    r = Isaac(key)
    return bytes(32 + (ch - 32 + r.next() % 95 + 32) % 95 for ch in msg)
