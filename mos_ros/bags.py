"""rosbag2 in and out without ROS: the images of a bag through the detector (and the
selector) into a new bag of ``mos_ros/msg/FaceArray``, as ``mos bag`` runs it.

Bags are read and written with rosbags (MCAP and sqlite3 storage); messages are (de)serialised
with its type store, extended by this package's own definitions read from ``msg/*.msg`` (so
the bag always carries the current ones). Every output message keeps the header (stamp,
frame_id) and the bag time of its input image. An MCAP file that rosbags cannot open (cut off
while recording: no summary, no footer) is read record by record with the ``mcap`` stream
reader; what is complete is processed, written and the bag closed, then the cut is reported.
"""
from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mcap.records import Channel, Message, Schema
from mcap.stream_reader import StreamReader
from rosbags.interfaces import Nodetype
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.rosbag2.errors import ReaderError, WriterError
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore
from tqdm import tqdm

from mos_ros.core import messages
from mos_ros.core.errors import ImageError, MosError
from mos_ros.core.image_io import Frame
from mos_ros.core.quality import inter_eye_distance
from mos_ros.core.selection import FaceSelector
from mos_ros.resources import find_shared_file

log = logging.getLogger(__name__)

#: Image message types read from bags, and how each becomes a BGR array.
IMAGE_DECODERS = {
    "sensor_msgs/msg/Image": messages.image_to_bgr,
    "sensor_msgs/msg/CompressedImage": messages.compressed_to_bgr,
}
FACE_ARRAY = "mos_ros/msg/FaceArray"
SELECTED_FACE = "mos_ros/msg/SelectedFace"
#: Output topics, below each image topic: detections, and with --select tracks and shots.
FACES_SUFFIX, TRACKED_SUFFIX, SELECTED_SUFFIX = "/faces", "/faces/tracked", "/faces/selected"
STORAGES = {"mcap": StoragePlugin.MCAP, "sqlite3": StoragePlugin.SQLITE3}
#: Reason under which messages whose bytes do not deserialise are counted.
UNDECODABLE_MESSAGE = "undecodable message"
_BASE_DEFAULTS = {"string": "", "bool": False, "float32": 0.0, "float64": 0.0}


class BagError(MosError, RuntimeError):
    """A bag cannot be read or written, or was cut off; the message says which and where."""


@dataclass(frozen=True)
class BagImage:
    """One image message of a bag: its topic, type, bag time (ns) and CDR bytes."""

    topic: str
    msgtype: str
    timestamp: int
    rawdata: bytes


@dataclass
class BagSource:
    """The image topics chosen from a bag, how many messages they hold (None when unknown)
    and an iterator over them that raises :class:`BagError` where the bag is damaged."""

    topics: dict[str, str]
    count: int | None
    images: Iterator[BagImage]
    storage: str


@dataclass
class BagSummary:
    """What ``mos bag`` did: frames and faces per input topic, skipped frames by reason,
    selected shots, and the error that stopped it early (None when the bag was read whole)."""

    out: Path
    frames: Counter = field(default_factory=Counter)
    faces: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    selected: int = 0
    error: str | None = None


def typestore() -> Typestore:
    """ROS 2 Kilted's message types plus this package's, from the shipped ``msg/*.msg``."""
    store = get_typestore(Stores.ROS2_KILTED)
    types: dict = {}
    for definition in sorted(find_shared_file("msg").glob("*.msg")):
        types.update(get_types_from_msg(definition.read_text(), f"mos_ros/msg/{definition.stem}"))
    store.register(types)
    return store


def new_message(store: Typestore, msgtype: str, **values: Any) -> Any:
    """A ``msgtype`` message with ``values`` and every other field at its zero value, so a
    field added to a definition later needs no change here."""
    _, fields = store.fielddefs[msgtype]
    args = {name: values[name] if name in values else _zero(store, desc)
            for name, desc in fields}
    return store.types[msgtype](**args)


def _zero(store: Typestore, desc: tuple) -> Any:
    kind, detail = desc
    if kind == Nodetype.NAME:
        return new_message(store, detail)
    if kind == Nodetype.BASE:
        return _BASE_DEFAULTS.get(detail[0], 0)
    (item_kind, item), length = detail
    if item_kind == Nodetype.BASE and item[0] not in ("string", "bool"):
        return np.zeros(length if kind == Nodetype.ARRAY else 0, dtype=item[0])
    return [_zero(store, (item_kind, item)) for _ in range(length if kind == Nodetype.ARRAY
                                                           else 0)]


def open_images(path: Path, topics: Sequence[str] = ()) -> BagSource:
    """The image topics of the bag at ``path`` (all, or those named in ``topics``)."""
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    try:
        reader = Reader(path)
        reader.open()
    except (ReaderError, OSError) as exc:
        recording = _mcap_file(path)
        if recording is None:
            raise BagError(f"{path}: not a readable rosbag2 (MCAP or sqlite3): {exc}") from None
        log.warning("%s: %s; reading its records in order to recover the complete ones",
                    recording, exc)
        return _recover_mcap(recording, set(topics), str(exc))
    available = {c.topic: c.msgtype for c in reader.connections}
    chosen = _choose_topics(path, available, topics)
    connections = [c for c in reader.connections if c.topic in chosen]
    return BagSource(chosen, sum(c.msgcount for c in connections),
                     _read_connections(path, reader, connections),
                     "mcap" if _mcap_file(path) else "sqlite3")


def _choose_topics(path: Path, available: dict[str, str], wanted: Sequence[str]
                   ) -> dict[str, str]:
    images = {t: m for t, m in available.items() if m in IMAGE_DECODERS}
    if not wanted:
        if not images:
            raise BagError(f"{path}: no sensor_msgs/Image or CompressedImage topic (topics: "
                           f"{', '.join(sorted(available)) or 'none'})")
        return images
    unusable = [t for t in wanted if t not in images]
    if unusable:
        raise BagError(f"{path}: {', '.join(unusable)}: not an image topic of this bag "
                       f"(image topics: {', '.join(sorted(images)) or 'none'})")
    return {t: images[t] for t in wanted}


def _read_connections(path: Path, reader: Reader, connections: list) -> Iterator[BagImage]:
    try:
        for connection, timestamp, rawdata in reader.messages(connections):
            yield BagImage(connection.topic, connection.msgtype, timestamp, rawdata)
    except Exception as exc:  # noqa: BLE001 - rosbags, apsw and zstd raise their own kinds
        raise BagError(f"{path}: damaged bag, reading stopped: {exc}") from None
    finally:
        reader.close()


def _mcap_file(path: Path) -> Path | None:
    """The MCAP file of a bag (the file itself, or the first one in a bag folder)."""
    if path.is_file():
        return path if path.suffix.lower() == ".mcap" else None
    found = sorted(path.glob("*.mcap"))
    return found[0] if found else None


def _recover_mcap(path: Path, wanted: set[str], reason: str) -> BagSource:
    schemas: dict[int, str] = {}
    channels: dict[int, tuple[str, str]] = {}

    def images() -> Iterator[BagImage]:
        read = 0
        with path.open("rb") as stream:
            try:
                for record in StreamReader(stream).records:
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                    elif isinstance(record, Channel):
                        channels[record.id] = (record.topic, schemas.get(record.schema_id, ""))
                    elif isinstance(record, Message) and record.channel_id in channels:
                        topic, msgtype = channels[record.channel_id]
                        if msgtype in IMAGE_DECODERS and (not wanted or topic in wanted):
                            read += 1
                            yield BagImage(topic, msgtype, record.log_time, record.data)
            except Exception as exc:  # noqa: BLE001 - mcap, struct, lz4, zstd: their own kinds
                detail = str(exc) or type(exc).__name__
                raise BagError(f"{path}: cut off or damaged ({reason}); {read} image "
                               f"message(s) read before the damage ({detail})") from None
        missing = wanted - {t for t, _ in channels.values()}
        if missing:
            raise BagError(f"{path}: no image topic {', '.join(sorted(missing))} in the "
                           f"readable part")

    return BagSource({}, None, images(), "mcap")


def decode_image(store: Typestore, image: BagImage) -> tuple[Any, np.ndarray]:
    """The message of ``image`` and its pixels as BGR uint8; raises
    :class:`~mos_ros.core.messages.ImageMessageError` when either cannot be had."""
    try:
        msg = store.deserialize_cdr(image.rawdata, image.msgtype)
    except Exception as exc:  # noqa: BLE001 - rosbags raises several kinds on bad bytes
        raise messages.ImageMessageError(UNDECODABLE_MESSAGE, str(exc)) from None
    return msg, IMAGE_DECODERS[image.msgtype](msg)


def bag_frames(path: Path, topics: Sequence[str] = ()) -> tuple[int | None, Iterator]:
    """The images of a bag as :class:`mos_ros.core.image_io.Frame` objects named
    ``<topic>_<index>`` (unusable ones carry their error), with their count when known."""
    bag = open_images(path, topics)
    store = typestore()

    def frames() -> Iterator[Frame]:
        index: Counter = Counter()
        for image in bag.images:
            name = f"{image.topic.strip('/').replace('/', '_')}_{index[image.topic]:06d}"
            index[image.topic] += 1
            try:
                yield Frame(name, decode_image(store, image)[1])
            except ImageError as exc:
                yield Frame(name, None, str(exc))

    return bag.count, frames()


class FaceBagWriter:
    """A new bag of FaceArray (and SelectedFace) messages, one connection per topic."""

    def __init__(self, out: Path, storage: str, store: Typestore) -> None:
        if out.exists():
            raise BagError(f"{out} exists already; name a new output bag")
        self.store = store
        self._writer = Writer(out, version=Writer.VERSION_LATEST,
                              storage_plugin=STORAGES[storage])
        self._connections: dict[str, Any] = {}
        try:
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f"{out}: cannot create the bag: {exc}") from None

    def write(self, topic: str, msgtype: str, timestamp: int, message: Any) -> None:
        """Append ``message`` on ``topic`` at bag time ``timestamp`` (ns)."""
        if topic not in self._connections:
            self._connections[topic] = self._writer.add_connection(topic, msgtype,
                                                                   typestore=self.store)
        self._writer.write(self._connections[topic], timestamp,
                           self.store.serialize_cdr(message, msgtype))

    def close(self) -> None:
        """Write the index and metadata.yaml, so the bag is complete and readable."""
        self._writer.close()


def process_bag(source: Path, out: Path, detector, topics: Sequence[str] = (),
                select: bool = False, storage: str = "", progress: bool = True) -> BagSummary:
    """Detect faces in every image of ``source`` (the ``topics`` named, or all) and write
    them to the new bag ``out`` as ``<topic>/faces`` FaceArray messages; with ``select`` also
    the selector's ``<topic>/faces/tracked`` and ``<topic>/faces/selected``. ``storage``:
    mcap or sqlite3 (empty: as the input). Unusable frames are skipped and counted; a damaged
    bag stops the run, and what was processed up to there is written and the bag closed."""
    bag = open_images(source, topics)
    summary = BagSummary(out)
    writer = FaceBagWriter(out, storage or bag.storage, typestore())
    frames = _FrameProcessor(detector, writer, select, summary)
    try:
        for image in tqdm(bag.images, total=bag.count, disable=not progress, unit="img"):
            frames.process(image)
    except BagError as exc:
        summary.error = str(exc)
    finally:
        writer.close()
    return summary


class _FrameProcessor:
    """Turns one image message into its output messages; a selector per topic."""

    def __init__(self, detector, writer: FaceBagWriter, select: bool,
                 summary: BagSummary) -> None:
        self.detector, self.writer, self.store = detector, writer, writer.store
        self.summary, self.select = summary, select
        self._selectors: dict[str, Any] = {}
        self._headers: dict[str, dict[float, Any]] = {}

    def process(self, image: BagImage) -> None:
        try:
            msg, pixels = decode_image(self.store, image)
        except ImageError as exc:
            self._skip(image.topic, getattr(exc, "reason", "bad image"), str(exc))
            return
        faces = self.detector.detect(pixels)
        self.summary.frames[image.topic] += 1
        self.summary.faces[image.topic] += len(faces)
        height, width = pixels.shape[:2]
        self.writer.write(image.topic + FACES_SUFFIX, FACE_ARRAY, image.timestamp,
                          self._face_array(msg.header, width, height,
                                           [messages.face_fields(f) for f in faces]))
        if self.select:
            self._select(image, msg.header, pixels, faces)

    def _skip(self, topic: str, reason: str, detail: str) -> None:
        if not self.summary.skipped[reason]:
            log.warning("%s: frame skipped (%s; logged once, counted): %s", topic, reason,
                        detail)
        self.summary.skipped[reason] += 1

    def _face_msg(self, fields: dict) -> Any:
        fields = dict(fields)
        x, y, z, w = fields.pop("orientation")
        point = self.store.types["geometry_msgs/msg/Point"]
        quaternion = self.store.types["geometry_msgs/msg/Quaternion"]
        return new_message(self.store, "mos_ros/msg/Face",
                           landmarks=[point(x=u, y=v, z=0.0) for u, v in fields.pop("landmarks")],
                           orientation=quaternion(x=x, y=y, z=z, w=w), **fields)

    def _face_array(self, header: Any, width: int, height: int, faces: list[dict]) -> Any:
        return new_message(self.store, FACE_ARRAY, header=header, image_width=width,
                           image_height=height, faces=[self._face_msg(f) for f in faces])

    def _select(self, image: BagImage, header: Any, pixels: np.ndarray, faces) -> None:
        selector = self._selectors.setdefault(image.topic, FaceSelector())
        headers = self._headers.setdefault(image.topic, {})
        seconds = header.stamp.sec + header.stamp.nanosec * 1e-9
        headers[seconds] = header
        result = selector.process(faces, pixels, seconds)
        tracked = [dict(messages.face_fields(t.face), track_id=t.track_id,
                        quality=t.terms.total if t.terms else -1.0) for t in result.tracked]
        height, width = pixels.shape[:2]
        self.writer.write(image.topic + TRACKED_SUFFIX, FACE_ARRAY, image.timestamp,
                          self._face_array(header, width, height, tracked))
        for shot in result.selected:
            shot_header = headers.get(shot.stamp, header)
            crop = np.ascontiguousarray(shot.crop, dtype=np.uint8)
            aligned = new_message(
                self.store, "sensor_msgs/msg/Image", header=shot_header, height=crop.shape[0],
                width=crop.shape[1], encoding="bgr8", step=crop.shape[1] * 3,
                data=crop.reshape(-1))
            face = self._face_msg(dict(messages.face_fields(shot.face), track_id=shot.track_id,
                                       quality=shot.quality))
            terms = shot.terms
            self.writer.write(image.topic + SELECTED_SUFFIX, SELECTED_FACE, image.timestamp,
                              new_message(self.store, SELECTED_FACE, header=shot_header,
                                          face=face, aligned=aligned,
                                          detector_score=terms.detector, pose_quality=terms.pose,
                                          size_quality=terms.size,
                                          sharpness_quality=terms.sharpness,
                                          inter_eye_distance=inter_eye_distance(
                                              shot.face.landmarks)))
            self.summary.selected += 1
