# microrl: on-device TD3. `make sim` trains and shows a swing-up; `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
STAMP_SETUP := $(VENV)/.setup-done
STAMP_TEST := $(VENV)/.test-deps-done
STAMP_BENCH := $(VENV)/.bench-deps-done
export OMP_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1

.PHONY: setup test test-fast sim bench-learn bench-peers bench-boards bench-sumtree bench-parity bench-qactor bench-mcu bench-checkpoint mpy package-json clean

setup: $(STAMP_SETUP)

$(STAMP_SETUP): requirements.txt host/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements.txt
	$(PIP) install --no-deps -e host
	touch $@

$(STAMP_TEST): $(STAMP_SETUP) requirements-test.txt
	$(PIP) install -r requirements-test.txt
	touch $@

$(STAMP_BENCH): $(STAMP_SETUP) requirements-bench.txt
	$(PIP) install -r requirements-bench.txt
	touch $@

test: $(STAMP_TEST)
	$(PY) -m pytest -n 2 tests

test-fast: $(STAMP_TEST)
	$(PY) -m pytest -n 2 -m "not slow" tests

sim: $(STAMP_SETUP)
	$(VENV)/bin/microrl sim --board unix --out runs/sim

bench-learn: $(STAMP_SETUP)
	$(VENV)/bin/microrl bench-learn --out bench/results

# The bench-learn job on the mirror and on RLtools (tinyrl; OpenBLAS when libopenblas-dev is installed).
bench-peers: $(STAMP_BENCH)
	$(VENV)/bin/microrl bench-peers --out bench/results

bench-boards: $(STAMP_SETUP)
	$(VENV)/bin/microrl bench-boards --out bench/results

bench-sumtree: $(STAMP_SETUP)
	$(VENV)/bin/microrl bench-sumtree --out runs/bench-sumtree

bench-parity: $(STAMP_SETUP)
	$(VENV)/bin/microrl bench-parity --out bench/results

bench-qactor: $(STAMP_SETUP)
	$(VENV)/bin/microrl bench-qactor --out bench/results

# Instructions per update of every board profile on QEMU; FIRMWARE_DIR from firmware/build_qemu.sh.
bench-mcu: $(if $(FIRMWARE_DIR),$(STAMP_SETUP))
	@if [ -z "$(FIRMWARE_DIR)" ]; then \
		echo "make bench-mcu needs FIRMWARE_DIR=DIR, a directory of QEMU firmware <core>-<backend>-<heap>.elf;" >&2; \
		echo "build it with: firmware/build_qemu.sh MICROPYTHON_DIR DIR ULAB_DIR (your micropython and micropython-ulab checkouts)" >&2; \
		exit 2; fi
	$(VENV)/bin/microrl bench-mcu --firmware-dir "$(FIRMWARE_DIR)" --out bench/results

# Checkpoint slot bytes and instructions per save and load of every profile on QEMU.
bench-checkpoint: $(if $(FIRMWARE_DIR),$(STAMP_SETUP))
	@if [ -z "$(FIRMWARE_DIR)" ]; then \
		echo "make bench-checkpoint needs FIRMWARE_DIR=DIR, a directory of QEMU firmware <core>-<backend>-<heap>.elf (build it with firmware/build_qemu.sh)" >&2; \
		exit 2; fi
	$(VENV)/bin/microrl bench-checkpoint --firmware-dir "$(FIRMWARE_DIR)" --out bench/results

mpy: $(STAMP_SETUP)
	$(VENV)/bin/microrl mpy --out build/mpy

# package.json (what mip installs) after a module of device/microrl was added or removed.
package-json: $(STAMP_SETUP)
	$(PY) -m microrl_host.board.mip

clean:
	rm -rf build runs bench/results .pytest_cache
