# aos-py: `make run` starts aos on the embedded node; `make test` runs the whole suite.
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
WASM := wasm/llama.wasm
WASM_SRC := $(wildcard wasm/*.c wasm/*.h)

.PHONY: run test bench wasm lint venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip
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
