# Set-up and the two entry points of the README: `make demo` (main job) and `make test` (tests).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= runs/sawtooth-quick

.PHONY: setup demo test lint bench bench-gpu clean

# The virtualenv sees system packages so that a CUDA torch the user already has is kept; only when no torch
# is importable is the CPU build torch==2.13.0 installed (an unpinned torch pulls a multi-GB CUDA build).
$(BIN)/augdiff: pyproject.toml
	$(PYTHON) -m venv --system-site-packages $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install "torch==2.13.0"
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

setup: $(BIN)/augdiff

demo: setup
	$(BIN)/augdiff run sawtooth --preset quick --out $(OUT)
	@echo "report: $(OUT)/report.md"

test: setup
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -n auto -q

# The GPU goals in one JSON (BENCHMARKS.md): the machine's own CUDA PyTorch, no virtualenv.
bench-gpu:
	PYTHONPATH=src $(PYTHON) -m augdiff.bench_gpu --out bench-gpu.json

lint: setup
	$(BIN)/ruff check src tests

clean:
	rm -rf $(VENV) runs .pytest_cache
