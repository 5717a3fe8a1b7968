# Two entry points: `make demo` (the main job) and `make test` (the whole suite). Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1

.PHONY: demo test bench
CHROMIUM := /usr/bin/chromium

# The venv is byte-compiled once, on both cores: where PYTHONDONTWRITEBYTECODE is set (this workplace), every process
# would otherwise compile diffusers, transformers and torch._dynamo anew (14 s an import, 6 s compiled). A few files
# written for newer Pythons (torch's testing/_internal/py312_intrinsics.py) do not compile; nothing imports them.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -c constraints.txt -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 $(VENV)/lib >/dev/null 2>&1 || true  # see above
	touch $(STAMP)

demo: $(STAMP)
	mkdir -p outputs
	$(BIN)/loopanimate animate examples/coffee.png --prompt "the coffee cup sways" -o outputs/coffee.gif

# The suite, then the tests that compare models once more on another CPU kernel set (ATEN_CPU_CAPABILITY=default):
# floats from two instances or a save/load must agree within tolerance on whatever CPU CI gets.
MODEL_TESTS := tests/test_unet.py tests/test_pipeline.py tests/test_convert.py tests/test_animate.py

# The web app's browser test drives Debian's Chromium (Playwright's own browser download cannot work offline).
$(CHROMIUM):
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check src tests bench experiments comfyui
	$(BIN)/ruff format --check src tests bench experiments comfyui
	$(BIN)/python -m pytest
	ATEN_CPU_CAPABILITY=default $(BIN)/python -m pytest -p no:cacheprovider $(MODEL_TESTS)

bench: $(STAMP)
	$(BIN)/python bench/unet_forward.py
	$(BIN)/python bench/motion_engine.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/batch.py --skip-diffusion
