# tillwire — every target bootstraps what it needs; `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DEPS   := $(VENV)/.deps-installed
NATIVE := protocols/.native-built
C_SRC  := $(wildcard native/*.c native/*.h) native/build_ffi.py
FUZZ_SECONDS ?= 60
ASAN_LIB = $(shell gcc -print-file-name=libasan.so)
UBSAN_LIB = $(shell gcc -print-file-name=libubsan.so)

.PHONY: all mosquitto run test test-native test-reference bench soak sanitize fuzz fuzz-long samples native clean help clang-available
all: test

help:
	@echo "make run        set up .venv and run the bridge on examples/demo.toml: the bundled till day, replayed"
	@echo "make test       set up .venv and run the whole suite on both backends (native, reference)"
	@echo "make bench      benchmarks: MB/s and events/s, native vs reference"
	@echo "make soak       the long crash test: 200 SIGKILLs of a streaming bridge (TILLWIRE_CRASH_CYCLES)"
	@echo "                and the long reliability suite (TILLWIRE_RELIABILITY=long, docs/bridge/reliability.md)"
	@echo "make sanitize   build the C core with ASan+UBSan and run the suite against it"
	@echo "make fuzz       libFuzzer on each C decoder for FUZZ_SECONDS (default 60)"
	@echo "make samples    regenerate sessions/ from the project's own generators (simulator/)"

# --- setup: a virtualenv with the package (editable) and its dev extra; idempotent.
$(DEPS): pyproject.toml setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $@

# --- the C core, rebuilt in place whenever a C source changes (warnings are errors here).
$(NATIVE): $(DEPS) $(C_SRC)
	TILLWIRE_WERROR=1 $(PY) native/build_ffi.py
	@touch $@

native: $(NATIVE)

# --- an MQTT broker for the tests and the demo: Debian's Mosquitto unpacked into .venv/opt (no root, no service);
#     without apt the MQTT tests use the amqtt Python broker (3.1.1 only). Fast when already done.
mosquitto: $(DEPS)
	@tools/ensure-mosquitto $(VENV)

run: $(NATIVE) mosquitto
	$(VENV)/bin/tillwire run --config examples/demo.toml

test: $(NATIVE) mosquitto
	TILLWIRE_BACKEND=native $(PY) -m pytest -q -p no:cacheprovider tests
	TILLWIRE_BACKEND=reference $(PY) -m pytest -q -p no:cacheprovider tests
	$(PY) -m pytest -q -p no:cacheprovider benches --quick

test-native: $(NATIVE) mosquitto
	TILLWIRE_BACKEND=native $(PY) -m pytest -q tests

test-reference: $(NATIVE) mosquitto
	TILLWIRE_BACKEND=reference $(PY) -m pytest -q tests

bench: $(NATIVE) mosquitto
	$(PY) -m pytest -q -p no:cacheprovider benches --benchmark-columns=median,min,max,rounds --benchmark-sort=name

# --- long runs kept out of `make test`: the bridge killed with SIGKILL many more times than the suite's 20.
TILLWIRE_CRASH_CYCLES ?= 200
soak: $(NATIVE) mosquitto
	TILLWIRE_CRASH_CYCLES=$(TILLWIRE_CRASH_CYCLES) $(PY) -m pytest -q -p no:cacheprovider \
	  tests/test_bridge_run.py -k sigkill
	TILLWIRE_RELIABILITY=long $(PY) -m pytest -q -p no:cacheprovider tests/reliability

samples: $(DEPS)
	$(PY) -m simulator.receipts --out sessions/escpos
	$(PY) -m simulator.zvt_dialogues --out sessions/payment
	$(PY) -m simulator.payment_samples --out sessions/payment
	$(PY) -m simulator.scale_sessions --out sessions/scale
	$(PY) -m simulator.msr_samples --out sessions/msr
	$(PY) -m simulator.displays --out sessions/display
	$(PY) -m simulator.till_sessions --out sessions/till

# --- ASan + UBSan: build the extension instrumented, run the suite, then restore the normal build.
sanitize: $(DEPS)
	TILLWIRE_SANITIZE=1 TILLWIRE_WERROR=1 $(PY) native/build_ffi.py
	@rm -f $(NATIVE)
	LD_PRELOAD="$(ASAN_LIB) $(UBSAN_LIB)" ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:quarantine_size_mb=0 \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 TILLWIRE_BACKEND=native \
	  $(PY) -m pytest -q -p no:cacheprovider tests; rc=$$?; \
	  TILLWIRE_WERROR=1 $(PY) native/build_ffi.py && touch $(NATIVE); exit $$rc

# --- libFuzzer under ASan+UBSan, one harness per C decoder (native/fuzz/fuzz_<name>.c, seeds in corpus/<name>/).
FUZZERS := $(patsubst native/fuzz/fuzz_%.c,%,$(wildcard native/fuzz/fuzz_*.c))
FUZZ_BINS := $(addprefix native/fuzz/fuzz_,$(FUZZERS))

clang-available:
	@command -v clang >/dev/null || { echo "installing clang for libFuzzer (apt)"; \
	  (apt-get update -qq && apt-get install -y -qq clang libclang-rt-14-dev) >/dev/null || \
	  { echo "make fuzz needs clang with libFuzzer: apt-get install clang libclang-rt-14-dev"; exit 1; }; }

native/fuzz/fuzz_%: native/fuzz/fuzz_%.c $(wildcard native/*.c native/*.h) | clang-available
	clang -std=c99 -g -O1 -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -Inative $< $(filter %.c,$(wildcard native/*.c)) -o $@

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZERS); do \
	  mkdir -p native/fuzz/out/$$f; echo "== fuzz_$$f for $(FUZZ_SECONDS) s"; \
	  native/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=native/fuzz/out/$$f- native/fuzz/out/$$f native/fuzz/corpus/$$f || exit 1; \
	done

fuzz-long:
	$(MAKE) fuzz FUZZ_SECONDS=600

clean:
	rm -rf build $(VENV) protocols/_native*.so protocols/.native-built native/fuzz/out $(FUZZ_BINS) .hypothesis
