#!/usr/bin/env bash
# Prints the size of a frozen one-folder build: the total, the total without the OCR models
# (the figure issue 13 aims at 200 MB), without the whole OCR engine (OpenCV with its OpenBLAS,
# AVIF codec and FFmpeg stubs, onnxruntime, the models, shapely, pyclipper), and the ten biggest
# parts.
#   bash installer/bundle-size.sh dist/teller-guard
set -euo pipefail
dir=${1:?usage: $0 FROZEN_DIR}
in=$dir/_internal
mb() { du -smc "$@" 2>/dev/null | tail -n1 | cut -f1; }
total=$(mb "$dir")
models=$(mb "$in/rapidocr_onnxruntime/models")
engine=$(mb "$in/rapidocr_onnxruntime" "$in/cv2" "$in/opencv_python_headless.libs" \
            "$in/onnxruntime" "$in/shapely" "$in/shapely.libs" "$in/pyclipper")
echo "bundle: $dir $total MB; without the OCR models ($models MB) $((total - models)) MB;" \
     "without the OCR engine and models ($engine MB) $((total - engine)) MB"
echo "bundle: biggest parts (MB):"
# sed reads the whole list (head would exit early and, with pipefail, sort's SIGPIPE would
# fail the script now and then)
du -sm "$in"/* "$dir"/teller-guard "$dir"/teller-guard-agent 2>/dev/null |
  sort -rn | sed -n "1,10{s|$dir/||; s|^|bundle:   |; p}"
