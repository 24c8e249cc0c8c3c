#!/usr/bin/env python3
"""The reference quantizer: ONNX Runtime's own static post-training quantization.

Usage: ort-quantize.py FP32.onnx CALIBRATION.npy OUT.onnx [--symmetric-activations]

Quantizes FP32.onnx with onnxruntime.quantization.quantize_static in the QDQ format,
int8 weights per channel, int8 activations, MinMax calibration, on exactly the
preprocessed images in CALIBRATION.npy (an [N, C, H, W] or [N, H, W, C] float32 array,
as `edgebench quantize --save-calibration` writes it), fed one image at a time. The
result is what `edgebench quantize --method minmax` is compared against (accuracy with
`edgebench compare --data`, latency on the CPU provider).

Run it with the pinned environment: `$(bash scripts/python-env.sh) scripts/ort-quantize.py ...`
"""

import sys

import numpy as np
import onnx
import onnxruntime
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)


class Images(CalibrationDataReader):
    def __init__(self, name, images):
        self.name = name
        self.images = images
        self.i = 0

    def get_next(self):
        if self.i >= len(self.images):
            return None
        x = self.images[self.i : self.i + 1]
        self.i += 1
        return {self.name: x}

    def rewind(self):
        self.i = 0


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 3 or any(a not in ("--symmetric-activations",) for a in argv if a.startswith("--")):
        sys.exit(__doc__.strip().splitlines()[2])
    src, calib, out = args
    images = np.load(calib)
    if images.dtype != np.float32 or images.ndim != 4 or len(images) == 0:
        sys.exit(f"ort-quantize: {calib}: expected a non-empty [N, C, H, W] float32 array, got {images.dtype} {images.shape}")
    if not np.isfinite(images).all():
        sys.exit(f"ort-quantize: {calib}: has non-finite values")
    model = onnx.load(src)
    name = model.graph.input[0].name
    quantize_static(
        src,
        out,
        Images(name, images),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": "--symmetric-activations" in argv},
    )
    print(f"ort-quantize: {out} from {src} on {len(images)} images (onnxruntime {onnxruntime.__version__})")


if __name__ == "__main__":
    main(sys.argv[1:])
