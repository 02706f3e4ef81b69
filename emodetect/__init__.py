"""emodetect: emotion in faces, text and voice with CNNs trained on a CPU, offline.

Public names load lazily so that `import emodetect` stays fast and never pulls in torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

from emodetect.labels import EMOTIONS  # noqa: E402  (the one label list; a tiny module)

_LAZY = {
    "train": ("emodetect.train", "train"),
    "TrainConfig": ("emodetect.train", "TrainConfig"),
    "evaluate": ("emodetect.evaluate", "evaluate"),
    "export": ("emodetect.export", "export_checkpoint"),
    "create_model": ("emodetect.registry", "create_model"),
    "load_model": ("emodetect.runtime", "load_model"),
    "EmotionDetector": ("emodetect.vision.pipeline", "EmotionDetector"),
    "FaceEmotion": ("emodetect.vision.pipeline", "FaceEmotion"),
    "Result": ("emodetect.vision.results", "Result"),
    "Face": ("emodetect.vision.results", "Face"),
    "VoiceEmotion": ("emodetect.voice.pipeline", "VoiceEmotion"),
    "VoiceResult": ("emodetect.voice.pipeline", "VoiceResult"),
    "TextEmotion": ("emodetect.text.pipeline", "TextEmotion"),
    "TextResult": ("emodetect.text.pipeline", "TextResult"),
    "analyse_video": ("emodetect.multimodal", "analyse_video"),
    "VideoAnalysis": ("emodetect.multimodal", "VideoAnalysis"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'emodetect' has no attribute {name!r}")


__all__ = ["EMOTIONS", "__version__", *_LAZY]
