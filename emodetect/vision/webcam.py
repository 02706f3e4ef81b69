"""A live camera (or a video file or stream URL) in an OpenCV window, or headless."""

from __future__ import annotations

import time
from typing import Any, Callable

from emodetect.vision.results import Result
from emodetect.vision.track import FrameAnalyser
from emodetect.vision.video import VideoError, frames, open_capture


def run_webcam(detector, source: str | int = 0, every: int = 1, smoothing: float = 0.5, blur: bool = False,
               max_frames: int | None = None, window: bool = True,
               on_result: Callable[[int, float, Result], None] | None = None,
               detect_every: int = 1) -> dict[str, Any]:
    """Live analysis of a camera (index) or a video file/stream URL, drawn in an OpenCV window.

    `window=False` runs headless (no GUI needed) and hands each Result to `on_result`. Press q or
    Esc in the window to stop. Returns frame count and mean frames per second.
    """
    import cv2

    if window and not _has_gui(cv2):
        raise VideoError("this OpenCV build has no GUI (opencv-python-headless); run with --no-window, "
                         "or install opencv-python for a live window")
    capture = open_capture(source)
    analyser = FrameAnalyser(detector, smoothing, detect_every=detect_every)
    count, started, fps = 0, time.perf_counter(), 0.0
    last = started
    try:
        for index, t, bgr in frames(capture, every, max_frames):
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            result = analyser.analyse(rgb, t)
            now = time.perf_counter()
            # Displayed FPS: a running average so the number is readable.
            fps = 0.9 * fps + 0.1 / max(now - last, 1e-6) if count else 1.0 / max(now - last, 1e-6)
            last = now
            count += 1
            if on_result is not None:
                on_result(index, t, result)
            if window:
                from emodetect.vision.draw import draw_faces

                shown = draw_faces(rgb, result.faces, blur=blur, extra_text=f"{fps:.0f} FPS")
                cv2.imshow("emodetect (q to quit)", cv2.cvtColor(shown, cv2.COLOR_RGB2BGR))
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
    finally:
        capture.release()
        if window:
            cv2.destroyAllWindows()
    elapsed = time.perf_counter() - started
    return {"frames": count, "seconds": round(elapsed, 3), "fps": round(count / elapsed, 2) if elapsed else 0.0,
            "faces": len(analyser.tracker.all_tracks())}


def _has_gui(cv2) -> bool:
    try:
        info = cv2.getBuildInformation()
    except cv2.error:
        return False
    gui_line = next((line for line in info.splitlines() if line.strip().startswith("GUI:")), "")
    return bool(gui_line) and "NONE" not in gui_line.upper()
