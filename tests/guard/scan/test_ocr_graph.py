"""The recognition model's fused graph: same arithmetic as the shipped model, garbage refused."""

from __future__ import annotations

import pytest

np = pytest.importorskip("numpy")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("google.protobuf")
pytest.importorskip("rapidocr_onnxruntime")

from guard.scan import ocr  # noqa: E402
from guard.scan.ocr_graph import GraphRewriteError, fuse  # noqa: E402


def _session(model: bytes | str) -> object:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def test_the_fused_model_computes_what_the_shipped_one_does() -> None:
    path = ocr.model_dir() / ocr.MODEL_FILES["rec"]
    fused, counts = fuse(path.read_bytes())
    # every convolution's affine and every hard-swish of PP-OCRv4's backbone were rewritten
    assert counts["affine"] == 28 and counts["hard_swish"] == 28 and counts["affine_next"] > 0
    shipped, rewritten = _session(str(path)), _session(fused)
    rng = np.random.default_rng(5)
    for width in (96, 320, 720):
        x = rng.uniform(-1, 1, (1, 3, 48, width)).astype(np.float32)
        a = shipped.run(None, {"x": x})[0]  # type: ignore[attr-defined]
        b = rewritten.run(None, {"x": x})[0]  # type: ignore[attr-defined]
        assert a.shape == b.shape
        assert float(np.abs(a - b).max()) < 1e-4
        assert (a.argmax(axis=2) == b.argmax(axis=2)).all()


def test_the_engine_loads_the_fused_model() -> None:
    engine = ocr.OcrEngine(threads=1)
    rec = engine._recogniser()
    assert rec.fused.get("hard_swish") == 28, rec.fuse_error


def test_bytes_that_are_no_model_are_refused_clearly() -> None:
    with pytest.raises(GraphRewriteError, match="not an ONNX model"):
        fuse(b"\xff\xfe this is not a protobuf message \x00\x01")
