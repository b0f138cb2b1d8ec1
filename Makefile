# Two entry points: `make demo` (set up + main job) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?= ../shared/data/ecpe-zh
RUN ?= runs/demo

.PHONY: install demo test bench reproduce clean

$(BIN)/ecpe: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[serve,test,fast,ray]'
	touch $@

install: $(BIN)/ecpe

# Train E2EECPE on split10 fold 1 (defaults: dev-selected), then extract pairs from sample texts.
demo: install
	@if [ -d "$(DATA)" ]; then export ECPE_DATA="$(DATA)"; fi; \
	$(BIN)/ecpe train --split split10 --folds 1 --out $(RUN) && \
	$(BIN)/ecpe predict --model $(RUN)/fold1/model.pt \
	  "昨天上午，警察把丢失的钱交给了老人，并告诉他小偷已经被抓住了。老人非常高兴，把钱存进了银行。" \
	  "听到儿子考上大学的消息，母亲激动得流下了眼泪。"

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python benchmarks/speed.py --data $(DATA)

# every table and figure of the paper (hours on 2 cores; resumable: re-run to continue)
reproduce: install
	$(BIN)/ecpe reproduce --data $(DATA) --out runs/repro --jobs 2

clean:
	rm -rf $(VENV) runs .pytest_cache
