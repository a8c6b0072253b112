#!/usr/bin/env bash
# Prints the size of a frozen one-folder build: the total, the OCR models, the total without
# them (the figure issue 13 limits to 200 MB) and its ten biggest parts.
#   bash installer/bundle-size.sh dist/teller-guard
set -euo pipefail
dir=${1:?usage: $0 FROZEN_DIR}
models=$dir/_internal/rapidocr_onnxruntime/models
total=$(du -sm "$dir" | cut -f1)
ocr=0
[ -d "$models" ] && ocr=$(du -sm "$models" | cut -f1)
echo "bundle: $dir $total MB, OCR models $ocr MB, without them $((total - ocr)) MB"
echo "bundle: biggest parts (MB):"
du -sm "$dir"/_internal/* "$dir"/teller-guard "$dir"/teller-guard-agent 2>/dev/null |
  sort -rn | head -n 10 | sed "s|$dir/||; s|^|bundle:   |"
