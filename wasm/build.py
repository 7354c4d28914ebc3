"""Build the inference engine: wasm/llama.wasm with zig's C compiler, and (for benchmarks) a native shared library.

Idempotent: a stamp holding the hash of the sources, flags and compiler version skips work when nothing changed.
Usage: .venv/bin/python wasm/build.py [--native] [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WASM_OUT = HERE / "llama.wasm"
NATIVE_DIR = HERE / "native"
NATIVE_OUT = NATIVE_DIR / ("libllm.dylib" if sys.platform == "darwin" else "libllm.so")

COMMON_FLAGS = ["-O3", "-ffast-math", "-fno-finite-math-only", "-std=c11", "-Wall", "-Wno-unused-function"]
WASM_FLAGS = [
    "-target", "wasm32-wasi", "-msimd128", "-mrelaxed-simd", "-mbulk-memory", "-mexec-model=reactor", "-s",
    "-Wl,--max-memory=4294901760", "-Wl,-z,stack-size=1048576",
]
NATIVE_FLAGS = ["-march=native", "-shared", "-fPIC", "-D_POSIX_C_SOURCE=200112L"]


def sources() -> list[Path]:
    """The C sources and headers the engine is built from."""
    return sorted([*HERE.glob("*.c"), *HERE.glob("*.h")])


def _digest(flags: list[str], tool: str) -> str:
    h = hashlib.sha256()
    for p in sources():
        h.update(p.name.encode())
        h.update(p.read_bytes())
    h.update(" ".join(flags).encode())
    h.update(tool.encode())
    return h.hexdigest()


def _stamp_path(out: Path) -> Path:
    return NATIVE_DIR / f".{out.name}.stamp"


def _up_to_date(out: Path, digest: str) -> bool:
    stamp = _stamp_path(out)
    return out.is_file() and stamp.is_file() and stamp.read_text().strip() == digest


def _zig_cmd() -> list[str]:
    return [sys.executable, "-m", "ziglang", "cc"]


def _zig_version() -> str:
    try:
        from importlib.metadata import version

        return "ziglang " + version("ziglang")
    except Exception:  # noqa: BLE001 - any failure means: unknown version, rebuild
        return "ziglang ?"


def build_wasm(force: bool = False, verbose: bool = True) -> Path:
    """Compile the C sources to wasm/llama.wasm unless the existing build is current."""
    flags = COMMON_FLAGS + WASM_FLAGS
    digest = _digest(flags, _zig_version())
    if not force and _up_to_date(WASM_OUT, digest):
        if verbose:
            print(f"{WASM_OUT.name} is up to date")
        return WASM_OUT
    if importlib.util.find_spec("ziglang") is None:
        raise SystemExit("building wasm/llama.wasm needs zig's C compiler: pip install ziglang "
                         "(it is in the 'dev' and 'build' extras)")
    NATIVE_DIR.mkdir(exist_ok=True)
    tmp = WASM_OUT.with_suffix(".wasm.tmp")
    cmd = [*_zig_cmd(), *flags, "-o", str(tmp), *[str(p) for p in sources() if p.suffix == ".c"], "-lm"]
    if verbose:
        print("building", WASM_OUT.name, "with zig cc")
    subprocess.run(cmd, check=True, cwd=HERE)
    os.replace(tmp, WASM_OUT)
    _stamp_path(WASM_OUT).write_text(digest + "\n")
    return WASM_OUT


def native_compiler() -> str | None:
    """The host C compiler used for the native build (cc, gcc or clang), if any."""
    for name in (os.environ.get("CC", ""), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def build_native(force: bool = False, verbose: bool = True) -> Path:
    """Compile the same C sources natively (-O3 -march=native) as a shared library for ctypes."""
    cc = native_compiler()
    if cc is None:
        raise RuntimeError("no C compiler (cc, gcc or clang) found for the native build")
    flags = COMMON_FLAGS + NATIVE_FLAGS
    digest = _digest(flags, cc)
    if not force and _up_to_date(NATIVE_OUT, digest):
        if verbose:
            print(f"{NATIVE_OUT.name} is up to date")
        return NATIVE_OUT
    NATIVE_DIR.mkdir(exist_ok=True)
    tmp = NATIVE_OUT.with_suffix(".tmp")
    cmd = [cc, *flags, "-o", str(tmp), *[str(p) for p in sources() if p.suffix == ".c"], "-lm"]
    if verbose:
        print("building", NATIVE_OUT.name, "with", cc)
    subprocess.run(cmd, check=True, cwd=HERE)
    os.replace(tmp, NATIVE_OUT)
    _stamp_path(NATIVE_OUT).write_text(digest + "\n")
    return NATIVE_OUT


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--native", action="store_true", help="also build the native shared library")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = ap.parse_args(argv)
    build_wasm(force=args.force)
    if args.native:
        build_native(force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
