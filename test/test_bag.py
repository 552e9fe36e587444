"""mos bag and mos detect on rosbag2 files: bags written here with rosbags' own writer and
message classes (raw rgb8 and JPEG topics, MCAP and sqlite3), read back after mos bag with
rosbags' reader; a bag cut off while recording keeps what was read before the cut.
"""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip('rosbags')
from rosbags.rosbag2 import Reader, StoragePlugin, Writer  # noqa: E402
from rosbags.typesys import Stores, get_typestore  # noqa: E402

from mos_ros.bags import FACES_SUFFIX, SELECTED_SUFFIX, TRACKED_SUFFIX, typestore  # noqa: E402
from mos_ros.cli import main  # noqa: E402
from mos_ros.core.image_io import read_image  # noqa: E402
from mos_ros.detector import FaceDetector  # noqa: E402
from mos_ros.resources import default_model_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
FRAMES = 8
RAW, COMPRESSED, DEPTH = '/camera/image_raw', '/camera/image_raw/compressed', '/depth/image'
FRAME_ID = 'camera_optical'
T0 = 1_700_000_000 * 10**9


def _frames() -> list[np.ndarray]:
    """Eight 320-px views of a demo photo, each shifted a little (a camera panning)."""
    photo = read_image(ROOT / 'models' / 'demo' / 'astronaut.jpg')
    scale = 360 / max(photo.shape[:2])
    photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return [np.ascontiguousarray(photo[4 * i:4 * i + 320, 3 * i:3 * i + 320])
            for i in range(FRAMES)]


def _write_camera_bag(path: Path, storage: StoragePlugin) -> list[int]:
    """A bag as a camera driver records it; returns the header stamps (ns) of the frames."""
    store = get_typestore(Stores.ROS2_KILTED)
    image_t = store.types['sensor_msgs/msg/Image']
    compressed_t = store.types['sensor_msgs/msg/CompressedImage']
    header_t = store.types['std_msgs/msg/Header']
    time_t = store.types['builtin_interfaces/msg/Time']
    stamps = [T0 + i * 33_333_333 for i in range(FRAMES)]
    with Writer(path, version=9, storage_plugin=storage) as writer:
        raw = writer.add_connection(RAW, image_t.__msgtype__, typestore=store)
        jpeg = writer.add_connection(COMPRESSED, compressed_t.__msgtype__, typestore=store)
        depth = writer.add_connection(DEPTH, image_t.__msgtype__, typestore=store)
        for i, (stamp, frame) in enumerate(zip(stamps, _frames())):
            header = header_t(stamp=time_t(sec=stamp // 10**9, nanosec=stamp % 10**9),
                              frame_id=FRAME_ID)
            rgb = np.ascontiguousarray(frame[..., ::-1])
            msg = image_t(header=header, height=rgb.shape[0], width=rgb.shape[1],
                          encoding='rgb8', is_bigendian=0, step=rgb.shape[1] * 3,
                          data=rgb.reshape(-1))
            writer.write(raw, stamp + 1000, store.serialize_cdr(msg, image_t.__msgtype__))
            data = np.frombuffer(cv2.imencode('.jpg', frame)[1].tobytes(), np.uint8)
            msg = compressed_t(header=header, format='jpeg', data=data)
            writer.write(jpeg, stamp + 2000, store.serialize_cdr(msg, compressed_t.__msgtype__))
            if i < 2:
                msg = image_t(header=header, height=2, width=2, encoding='32FC1',
                              is_bigendian=0, step=8, data=np.zeros(16, np.uint8))
                writer.write(depth, stamp + 3000, store.serialize_cdr(msg, image_t.__msgtype__))
    return stamps


def _read_outputs(path: Path) -> dict[str, list]:
    """{topic: [(bag time, message), ...]} of a bag written by mos bag."""
    store = typestore()
    found: dict[str, list] = {}
    with Reader(path) as reader:
        for connection, timestamp, rawdata in reader.messages():
            found.setdefault(connection.topic, []).append(
                (timestamp, store.deserialize_cdr(rawdata, connection.msgtype)))
    return found


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


@pytest.fixture(scope='module')
def mcap_bag(tmp_path_factory) -> tuple[Path, list[int]]:
    path = tmp_path_factory.mktemp('bags') / 'camera'
    return path, _write_camera_bag(path, StoragePlugin.MCAP)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_bag_gets_one_face_array_per_image_with_its_stamp(storage, mcap_bag, tmp_path, capsys):
    if storage == 'mcap':
        source, stamps = mcap_bag
    else:
        source = tmp_path / 'camera_sqlite'
        stamps = _write_camera_bag(source, StoragePlugin.SQLITE3)
    out = tmp_path / 'faces'
    assert main(['bag', str(source), '-o', str(out)]) == 0
    printed = capsys.readouterr()
    assert 'skipped 2 frame(s): unknown encoding' in printed.out
    outputs = _read_outputs(out)
    assert sorted(outputs) == [COMPRESSED + FACES_SUFFIX, RAW + FACES_SUFFIX]
    assert next(Path(out).glob('*.mcap' if storage == 'mcap' else '*.db3'))
    detector = FaceDetector.open(default_model_path())
    for topic, offset in ((RAW, 1000), (COMPRESSED, 2000)):
        arrays = outputs[topic + FACES_SUFFIX]
        assert len(arrays) == FRAMES
        assert [_stamp_ns(msg) for _, msg in arrays] == stamps
        assert [t for t, _ in arrays] == [s + offset for s in stamps]
        assert {msg.header.frame_id for _, msg in arrays} == {FRAME_ID}
        assert all(len(msg.faces) >= 1 for _, msg in arrays)
        assert (arrays[0][1].image_width, arrays[0][1].image_height) == (320, 320)
    expected = detector.detect(_frames()[0])
    first = outputs[RAW + FACES_SUFFIX][0][1].faces
    assert len(first) == len(expected)
    assert [first[0].x_min, first[0].y_min, first[0].x_max, first[0].y_max] == pytest.approx(
        expected[0].box, abs=1e-3)
    assert first[0].yaw == pytest.approx(expected[0].pose.yaw, abs=1e-3)
    np.testing.assert_allclose([(p.x, p.y) for p in first[0].landmarks],
                               expected[0].landmarks, atol=1e-3)


def test_bag_with_select_adds_tracks_and_aligned_best_shots(mcap_bag, tmp_path):
    source, stamps = mcap_bag
    out = tmp_path / 'selected'
    assert main(['bag', str(source), '-o', str(out), '--topic', RAW, '--select']) == 0
    outputs = _read_outputs(out)
    tracked = outputs[RAW + TRACKED_SUFFIX]
    assert [_stamp_ns(msg) for _, msg in tracked] == stamps
    assert all(face.track_id > 0 for _, msg in tracked for face in msg.faces)
    shots = outputs[RAW + SELECTED_SUFFIX]
    assert shots
    assert {_stamp_ns(msg) for _, msg in shots} <= set(stamps)
    aligned = shots[0][1].aligned
    assert (aligned.height, aligned.width, aligned.encoding) == (112, 112, 'bgr8')
    assert 0.0 < shots[0][1].face.quality <= 1.0


def test_cut_off_bag_keeps_what_was_read_and_says_where(mcap_bag, tmp_path, capsys):
    source, stamps = mcap_bag
    recording = next(source.glob('*.mcap'))
    cut = tmp_path / 'cut.mcap'
    cut.write_bytes(recording.read_bytes()[:int(recording.stat().st_size * 0.6)])
    out = tmp_path / 'partial'
    assert main(['bag', str(cut), '-o', str(out), '--topic', RAW]) == 2
    error = capsys.readouterr().err
    assert f'{cut}: cut off or damaged' in error and str(out) in error
    arrays = _read_outputs(out)[RAW + FACES_SUFFIX]
    assert 0 < len(arrays) < FRAMES
    assert [_stamp_ns(msg) for _, msg in arrays] == stamps[:len(arrays)]


def test_bag_errors_name_what_is_wrong(mcap_bag, tmp_path, capsys):
    source, _ = mcap_bag
    assert main(['bag', str(source), '-o', str(tmp_path / 'a'), '--topic', '/nope']) == 2
    assert ('/nope: not an image topic of this bag (image topics: /camera/image_raw, '
            '/camera/image_raw/compressed, /depth/image)') in capsys.readouterr().err
    garbage = tmp_path / 'garbage.mcap'
    garbage.write_bytes(b'not a bag at all')
    assert main(['bag', str(garbage), '-o', str(tmp_path / 'b')]) == 2
    assert 'garbage.mcap: cut off or damaged' in capsys.readouterr().err
    assert main(['bag', str(source), '-o', str(source)]) == 2
    assert 'exists already' in capsys.readouterr().err


def test_detect_reads_a_bag_like_a_folder_of_images(mcap_bag, tmp_path):
    source, _ = mcap_bag
    out = tmp_path / 'detect'
    assert main(['detect', str(source), '-o', str(out)]) == 0
    results = json.loads((out / 'detections.json').read_text())
    names = sorted(results['frames'])
    assert len(names) == 2 * FRAMES
    assert names[0] == 'camera_image_raw_000000'
    assert sorted(results['errors']) == ['depth_image_000000', 'depth_image_000001']
    assert all(results['frames'][name] for name in names)
