"""Run the detector over an image file, a folder of images, a video or a rosbag2; write drawings
+ JSON."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import cv2
from tqdm import tqdm

from mos_ros.core.draw import draw_faces
from mos_ros.core.errors import ImageError
from mos_ros.core.image_io import IMAGE_SUFFIXES, Frame, read_image
from mos_ros.detector import FaceDetector

log = logging.getLogger(__name__)
VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v"})
#: rosbag2 storage files (MCAP, sqlite3); a bag folder holds metadata.yaml.
BAG_SUFFIXES = frozenset({".mcap", ".db3"})


def is_bag(path: Path) -> bool:
    """Whether ``path`` is a rosbag2: a folder with metadata.yaml, an .mcap or a .db3 file."""
    return (path / "metadata.yaml").is_file() or path.suffix.lower() in BAG_SUFFIXES


def frames_of(source: Path) -> tuple[int | None, Iterator[Frame]]:
    """Frames of an image, a folder of images, a video or a rosbag2's image topics, with
    their count when known."""
    if is_bag(source):
        # rosbags is an optional dependency (extra [bag]); only bags need it.
        from mos_ros.bags import bag_frames

        return bag_frames(source)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        return len(files), (_read_frame(p) for p in files)
    if source.suffix.lower() in VIDEO_SUFFIXES:
        capture = cv2.VideoCapture(str(source))
        if not capture.isOpened():
            raise ImageError(f"{source}: cannot open the video")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) or None
        return count, _video_frames(capture, source.stem)
    return 1, iter([_read_frame(source, strict=True)])


def _read_frame(path: Path, strict: bool = False) -> Frame:
    try:
        return Frame(path.stem, read_image(path))
    except ImageError as exc:
        if strict:
            raise
        return Frame(path.stem, None, str(exc))


def _video_frames(capture: cv2.VideoCapture, stem: str) -> Iterator[Frame]:
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield Frame(f"{stem}_{index:06d}", image)
            index += 1
    finally:
        capture.release()


def detect_files(detector: FaceDetector, source: Path, out_dir: Path,
                 progress: bool = True) -> dict:
    """Detect faces in every frame of ``source``; write ``<name>.jpg`` drawings and one
    ``detections.json``. Unreadable files in a folder are reported, not fatal."""
    out_dir.mkdir(parents=True, exist_ok=True)
    count, frames = frames_of(source)
    results: dict = {"model": detector.meta.variant, "source": str(source), "frames": {},
                     "errors": {}}
    try:
        for frame in tqdm(frames, total=count, disable=not progress or count == 1, unit="img"):
            if frame.image is None:
                log.warning("skipped %s", frame.error)
                results["errors"][frame.name] = frame.error
                continue
            faces = detector.detect(frame.image)
            cv2.imwrite(str(out_dir / f"{frame.name}.jpg"), draw_faces(frame.image, faces))
            results["frames"][frame.name] = [face.to_dict() for face in faces]
    finally:  # a source that breaks off (a cut-off bag) keeps what was done before
        (out_dir / "detections.json").write_text(json.dumps(results, indent=1))
    return results
