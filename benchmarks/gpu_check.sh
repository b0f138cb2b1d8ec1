#!/usr/bin/env bash
# GPU check: the device tests, the speed benchmark and one fold of training on a CUDA machine.
#
#   [FOLDS=all JOBS=2] bash benchmarks/gpu_check.sh DATA_DIR [OUT_DIR]
#
# DATA_DIR holds split10/foldK_{train,test}.txt for the folds trained (FOLDS, default 1). Needs python3 with a CUDA build of torch, numpy,
# scipy, tqdm, pytest and gensim (jieba is not needed: raw text is not timed here). The package is used
# from src/ (no install). Prints figures; logs go to OUT_DIR (default /tmp/ecpe-gpu).
set -u -o pipefail
data=${1:?usage: gpu_check.sh DATA_DIR [OUT_DIR]}
out=${2:-/tmp/ecpe-gpu}
mkdir -p "$out"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
python3 -m pytest -q -p no:cacheprovider tests/test_device.py 2>&1 | tee "$out/pytest.log"
python3 benchmarks/speed.py --data "$data" --device cuda --skip-raw --epochs 3 --run /nonexistent 2>&1 | tee "$out/speed_cuda.log"
python3 -m ecpe.cli train --data "$data" --folds "${FOLDS:-1}" --jobs "${JOBS:-1}" --device cuda --out "$out/run" -q \
    2>&1 | tee "$out/train.log"
