# Everything a fresh machine needs beyond python3 and make is installed here, into .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# `make simulator PORT=8765 SIMULATOR_ARGS='--auth bearer'`; PORT 0 picks a free port.
PORT ?= 0
SIMULATOR_ARGS ?=

# The lowest pulumi, requests and urllib3 pyproject.toml allows: `make test-compat` runs the tests that
# touch them against those, in their own venv.
COMPAT_VENV ?= .venv-compat
PULUMI_FLOOR := $(shell sed -n 's/.*"pulumi>=\([0-9.]*\).*/\1/p' pyproject.toml)
REQUESTS_FLOOR := $(shell sed -n 's/.*"requests>=\([0-9.]*\).*/\1/p' pyproject.toml)
URLLIB3_FLOOR := $(shell sed -n 's/.*"urllib3>=\([0-9.]*\).*/\1/p' pyproject.toml)
# The SDK-facing tests (provider, host, program, testing kit, the provider plugin) and the HTTP stack's
# (client, transport). The plugin serves the gRPC protocol through the SDK's stubs: its range is the SDK's.
COMPAT_TESTS := tests/test_provider.py tests/test_provider_host.py tests/test_provider_engine.py \
	tests/test_resource.py tests/test_secrets.py tests/test_testing.py tests/test_kit_engine.py \
	tests/test_kit_programs.py tests/test_pausing_host.py \
	tests/test_plugin.py tests/test_plugin_schema.py tests/test_plugin_process.py tests/test_plugin_secret_checks.py \
	tests/test_guardian_host.py tests/test_preview_checks.py \
	tests/test_client.py tests/test_client_e2e.py tests/test_client_tls.py tests/test_transport.py \
	tests/test_calls.py tests/test_answers.py examples
COMPAT_STAMP := $(COMPAT_VENV)/.installed

.PHONY: test test-compat lint typecheck unit demo bench simulator clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# The whole suite (what CI runs); `make unit` is the quick loop without the slow tests (~1 minute).
test: lint typecheck
	$(PY) -m pytest -q

$(COMPAT_STAMP): pyproject.toml
	test -x $(COMPAT_VENV)/bin/python || $(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet -e '.[test]' 'pulumi==$(PULUMI_FLOOR)' \
		'requests==$(REQUESTS_FLOOR).0' 'urllib3==$(URLLIB3_FLOOR).0'
	touch $(COMPAT_STAMP)

# A declared dependency range is a tested range: the tests that touch them, on the oldest versions we allow.
test-compat: $(COMPAT_STAMP)
	$(COMPAT_VENV)/bin/python -c "from importlib.metadata import version as v; \
		floors = {'pulumi': '$(PULUMI_FLOOR).', 'requests': '$(REQUESTS_FLOOR).', 'urllib3': '$(URLLIB3_FLOOR).'}; \
		assert all(v(n).startswith(f) for n, f in floors.items()), [v(n) for n in floors]; \
		print(*(n + ' ' + v(n) for n in floors))"
	$(COMPAT_VENV)/bin/python -m pytest -q $(COMPAT_TESTS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

demo: $(STAMP)
	$(PY) examples/demo.py

bench: $(STAMP)
	$(PY) -m benchmarks

simulator: $(STAMP)
	$(PY) -m enos_pulumi.simulator --port $(PORT) $(SIMULATOR_ARGS)

clean:
	rm -rf $(VENV) $(COMPAT_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info dist

# Release artifacts: sdist and wheel into dist/, metadata checked. .ci/dist-check also runs the sdist's
# own tests against the installed wheel. A stale *.egg-info/SOURCES.txt would put files that MANIFEST.in
# no longer names into the sdist: it goes first.
.PHONY: dist
dist: $(STAMP)
	rm -rf dist *.egg-info
	$(PY) -m build --quiet --outdir dist .
	$(VENV)/bin/twine check --strict dist/*
