"""Benchmark of the recognition model as shipped-and-fused against int8 quantisations of it.

    .venv/bin/python tests/bench/bench_ocr_quant.py [--screens 2] [--seed 7]

Needs the `onnx` package, which the product does not ship (onnxruntime.quantization imports it);
put it on PYTHONPATH from a private folder (`pip install --no-deps --target DIR onnx ml_dtypes`),
never into the shared venv. It renders 1080p teller screens (`bench_ocr.render_screen`), takes the
crops the engine would recognise (`ocr.find_regions`, `ocr.pick`, the engine's padding), makes
dynamic int8 models (every operator; MatMul/Gemm only) and a static int8 model (QOperator,
per-channel, calibrated on the crops of the last screen) from the fused model in a temporary
folder, then reads the first screen's crops on one thread with each and prints CPU ms per crop and
how many crops read the same text as the fused fp32 model. A script, not a test: it asserts nothing.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def crops_of(image: Any) -> list[Any]:
    import cv2

    from guard.scan import ocr

    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    regions = ocr.find_regions(gray)
    ih, iw = gray.shape[:2]
    out = []
    for i in ocr.pick(regions):
        x, y, w, h = regions.boxes[i]
        pad_y, pad_x = max(2, h // 6), max(3, h // 3)  # as OcrEngine.read pads
        out.append(image[max(0, y - pad_y):min(ih, y + h + pad_y),
                         max(0, x - pad_x):min(iw, x + w + pad_x)])
    return out


def model_input(crop: Any) -> Any:
    import cv2
    import numpy as np

    h, w = crop.shape[:2]
    width = max(8, math.ceil(48 * w / max(1, h)))
    x = cv2.resize(crop, (width, 48)).astype(np.float32).transpose(2, 0, 1)[np.newaxis]
    return x / np.float32(127.5) - np.float32(1.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--screens", type=int, default=2,
                    help="1080p screens rendered: the first is timed, the last calibrates")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    try:
        from onnxruntime import quantization as q
    except ImportError as exc:
        sys.exit(f"onnxruntime.quantization needs the onnx package ({exc}); see this script's doc")
    import onnxruntime as ort

    from guard.scan import ocr
    from guard.scan.ocr_graph import fuse
    from tests.bench import bench_ocr

    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rng, bins = random.Random(args.seed), bench_ocr._bins()
    shots = [bench_ocr.render_screen(rng, 1920, 1080, bins).image
             for _ in range(max(2, args.screens))]
    timed, calib = crops_of(shots[0]), crops_of(shots[-1])
    rec = ocr.Recogniser(ocr.model_dir() / ocr.MODEL_FILES["rec"], 1)
    with tempfile.TemporaryDirectory() as tmp:
        fused = Path(tmp, "fused.onnx")
        fused.write_bytes(fuse((ocr.model_dir() / ocr.MODEL_FILES["rec"]).read_bytes())[0])
        pre = Path(tmp, "pre.onnx")
        q.shape_inference.quant_pre_process(str(fused), str(pre), skip_symbolic_shape=True)
        name = rec.session.get_inputs()[0].name
        models = {"fused fp32": fused, "dynamic int8, all": Path(tmp, "dyn_all.onnx"),
                  "dynamic int8, MatMul": Path(tmp, "dyn_mm.onnx"),
                  "static int8 QOperator": Path(tmp, "static.onnx")}
        q.quantize_dynamic(str(pre), str(models["dynamic int8, all"]),
                           weight_type=q.QuantType.QUInt8)
        q.quantize_dynamic(str(pre), str(models["dynamic int8, MatMul"]),
                           weight_type=q.QuantType.QInt8, op_types_to_quantize=["MatMul", "Gemm"])

        class Reader(q.CalibrationDataReader):  # type: ignore[misc]
            def __init__(self) -> None:
                self._it = iter([{name: model_input(c)} for c in calib])

            def get_next(self) -> dict[str, Any] | None:
                return next(self._it, None)

        q.quantize_static(str(pre), str(models["static int8 QOperator"]), Reader(),
                          quant_format=q.QuantFormat.QOperator, per_channel=True,
                          activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)
        reference: list[str] = []
        for label, path in models.items():
            # the engine's session, with this model in it
            rec.session = ort.InferenceSession(str(path), sess_options=rec.session._sess_options,
                                               providers=["CPUExecutionProvider"])
            rec._one(timed[0])  # first run allocates
            t0 = time.process_time()
            texts = [rec._one(c)[0] for c in timed]
            ms = (time.process_time() - t0) / len(timed) * 1000
            reference = reference or texts
            same = sum(a == b for a, b in zip(texts, reference, strict=True))
            print(f"{label:24s} {ms:5.1f} ms CPU/crop ({len(timed)} crops, one thread), "
                  f"{path.stat().st_size / 1e6:4.1f} MB, same text as fp32 {same}/{len(timed)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
