# Every target creates .venv and installs the project on its own, so a fresh machine needs only python3.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test lint typecheck cfn-lint unit demo bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict layers/muse_core/muse_core functions cli dev benchmarks tests

cfn-lint: $(STAMP)
	$(BIN)/cfn-lint template.yaml

unit: $(STAMP)
	$(BIN)/python -m pytest

test: lint typecheck cfn-lint unit

demo: $(STAMP)
	$(BIN)/muse-cloud-dev demo

bench: $(STAMP)
	status=0; for script in benchmarks/bench_*.py; do $(BIN)/python $$script || status=1; done; exit $$status

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

# Long attack runs, not part of `make test`: every part is bounded in examples and time and talks
# to loopback only. Each part runs even when an earlier one found something; the target fails
# if any did.
.PHONY: soak
SOAK_ARTIFACTS ?= $(or $(TMPDIR),/tmp)/muse-soak-
FUZZ_MPACK_SECONDS ?= 300
FUZZ_BODIES_SECONDS ?= 120
SCHEMATHESIS_EXAMPLES ?= 50
soak: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,soak]"
	failed=0; \
	MUSE_ATTACK_PROFILE=soak $(BIN)/python -m pytest tests/attack -p no:cacheprovider || failed=1; \
	PYTHONPATH=tests $(BIN)/python -m attack.fuzz_mpack -max_total_time=$(FUZZ_MPACK_SECONDS) -timeout=30 \
		-rss_limit_mb=3072 -artifact_prefix=$(SOAK_ARTIFACTS)mpack- || failed=1; \
	PYTHONPATH=tests $(BIN)/python -m attack.fuzz_bodies -max_total_time=$(FUZZ_BODIES_SECONDS) -timeout=30 \
		-rss_limit_mb=3072 -artifact_prefix=$(SOAK_ARTIFACTS)bodies- || failed=1; \
	PYTHONPATH=tests $(BIN)/python -m attack.schemathesis_stack $(SCHEMATHESIS_EXAMPLES) || failed=1; \
	exit $$failed
