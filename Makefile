# aos-py: `make run` starts aos on the embedded node; `make test` runs the whole suite.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
WASM := wasm/llama.wasm
WASM_SRC := $(wildcard wasm/*.c wasm/*.h)

.PHONY: run test bench wasm lint venv clean

venv: $(VENV)/.installed

# llama.cpp built for any x86-64 with AVX2, not for the build machine's newest instructions: a -march=native
# build uses AMX / AVX-512 tiles that a VM may not grant (SIGILL at the first matrix product). Built fresh,
# never from pip's wheel cache, so a wheel built with other flags is never reused.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON \
	-DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF

$(VENV)/.llama-portable:
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(VPY) -m pip install -q --no-cache-dir 'llama-cpp-python>=0.3'
	touch $@

$(VENV)/.installed: pyproject.toml setup.py $(VENV)/.llama-portable
	$(VPY) -m pip install -q -e '.[dev,native]'
	touch $@

wasm: $(WASM)

$(WASM): $(WASM_SRC) wasm/build.py | venv
	$(VPY) wasm/build.py

run: venv $(WASM)
	$(VENV)/bin/aos $(ARGS)

test: venv $(WASM)
	$(VPY) -m ruff check aos_py tests bench wasm examples
	$(VPY) -m pytest -q tests

bench: venv $(WASM)
	$(VPY) bench/run_all.py

lint: venv
	$(VPY) -m ruff check aos_py tests bench wasm examples

clean:
	rm -rf build dist *.egg-info $(WASM) wasm/*.cwasm
