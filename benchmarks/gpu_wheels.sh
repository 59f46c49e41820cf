#!/usr/bin/env bash
# Here (with pip access): the wheels the device image lacks, into .whl/ (ignored by git, carried to the
# device with carry=[".whl"]). The image has Python 3.12 with torch, accelerate, huggingface_hub 1.x,
# tokenizers, pandas, pyarrow, psutil, rich; transformers is carried for a version this project is tested with.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .whl && mkdir .whl
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  transformers==5.24.0 datasets==5.2.0 evaluate==0.4.6 dill==0.4.1 multiprocess==0.70.19 nltk==3.10.4 defusedxml
python -m pip wheel -q --no-deps -w .whl rouge-score==0.1.2 .
du -sh .whl
