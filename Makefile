# make index PHOTOS=~/Pictures   set up (first time) and index a folder of photos
# make test                      set up (first time) and run lint + tests
# make demo                      search a synthetic library with models trained here (no downloads)
PHOTOS ?= ./photos
STAMP := .venv/.setup-done

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	touch $(STAMP)

.PHONY: setup index test lint demo
setup: $(STAMP)

index: $(STAMP)
	.venv/bin/indexer build $(PHOTOS)
	.venv/bin/indexer status

demo: $(STAMP)
	.venv/bin/python -m testing.demo

lint: $(STAMP)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

test: $(STAMP)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/python -m pytest -q
