"""`emodetect video` against real time: a 640x480 clip with one face, speech and subtitles.

The clip is docs/video/make_demo.py's (a photo panned, espeak-ng speech, SubRip cues). Each row
runs `emodetect.analyse_video` (faces, sound track, subtitles, fusion, every output including
the H.264 video) several times and reports the median wall time and its ratio to the clip's
length: below 1.0 is faster than real time. The face-only row (no voice, no subtitles, no video
file) is the baseline measured in the same run.

    python bench/video.py [--runs 3] [--models realtime-int8 default]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from common import REPO, machine_info, markdown_table, median, timed_runs, write_json

sys.path.insert(0, str(REPO / "docs" / "video"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", nargs="+", default=["realtime-int8", "default"])
    args = parser.parse_args()

    from make_demo import main as make_demo

    from emodetect.multimodal import analyse_video
    from emodetect.media import probe

    work = Path(tempfile.mkdtemp(prefix="emodetect-bench-video-"))
    make_demo(work)
    clip, subtitles = work / "demo.mp4", work / "demo.srt"
    length = probe(clip)["duration_s"]
    rows, records = [], []
    for model in args.models:
        for name, options in (("faces only (baseline)", dict(voice=False, save_video=False)),
                              ("faces + voice + text + H.264 video", dict(subtitles=subtitles, captions=True))):
            times = timed_runs(lambda: analyse_video(clip, out_dir=work / "out", model=model, **options),
                               args.runs)
            seconds = median(times)
            rows.append([model, name, seconds, seconds / length])
            records.append({"model": model, "run": name, "median_s": round(seconds, 3),
                            "times_s": [round(t, 3) for t in times], "realtime_ratio": round(seconds / length, 3)})
    print(f"clip: {length:.1f} s, 640x480, 15 fps, one face, speech, 3 subtitle cues")
    print(markdown_table(["face model", "what runs", "median s", "x real time"], rows))
    path = write_json("video.json", {"machine": machine_info(), "clip_s": length, "runs": args.runs,
                                     "rows": records})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
