"""Build hook: copy lua/, packages/ and the built wasm/llama.wasm into the wheel as aos_py/_data."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).parent


class BuildWithData(build_py):
    """Ship the Lua process library, APM packages and the wasm engine inside the package."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "aos_py" / "_data"
        for name in ("lua", "packages"):
            src = ROOT / name
            if src.is_dir():
                shutil.copytree(src, target / name, dirs_exist_ok=True)
        wasm = ROOT / "wasm" / "llama.wasm"
        if wasm.is_file():
            (target / "wasm").mkdir(parents=True, exist_ok=True)
            shutil.copy2(wasm, target / "wasm" / "llama.wasm")


setup(cmdclass={"build_py": BuildWithData})
