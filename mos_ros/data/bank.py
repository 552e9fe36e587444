"""The face bank: real training photos turned into material for scenes.

Each training photo is labelled by teacher consensus; every agreed face large enough to carry
texture and with a good FaceMesh fit becomes a turnable :class:`FaceSource` (with its mirror),
and the photo with its labels can itself serve as a scene. Face-free photos become backgrounds.
Only photos of the ``train`` role enter; held-out photos never do.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from mos_ros.core.image_io import read_image
from mos_ros.core.labels import FaceLabels
from mos_ros.data.mesh_fit import fit_face_mesh
from mos_ros.data.teachers import (
    MAX_MESH_RESIDUAL, ConsensusFace, Teacher, consensus, open_teacher)
from mos_ros.scenes.bank import FaceBank, PhotoFaces, TinyFace
from mos_ros.scenes.reface import face_sources

LOG = logging.getLogger(__name__)
#: Teachers whose agreement labels a training photo.
BANK_TEACHERS = ("yuface", "centerface", "blazeface")
#: Smallest photo face (box long side, px) worth turning: smaller ones have too little texture.
MIN_SOURCE_FACE_PX = 56.0


def labels_of(faces: Sequence[ConsensusFace]) -> FaceLabels:
    """Consensus faces as training labels (landmarks and pose where the teachers gave them)."""
    count = len(faces)
    return FaceLabels(
        np.reshape([f.box for f in faces], (count, 4)).astype(np.float32),
        np.reshape([f.landmarks if f.landmarks is not None else np.zeros((5, 2))
                    for f in faces], (count, 5, 2)).astype(np.float32),
        np.reshape([f.pose if f.pose is not None else (0, 0, 0) for f in faces],
                   (count, 3)).astype(np.float32),
        np.array([f.landmarks is not None for f in faces], bool),
        np.array([f.pose is not None for f in faces], bool))


def _turnable_faces(image: np.ndarray, faces: Sequence[ConsensusFace], name: str) -> list:
    turnable = []
    for index, face in enumerate(faces):
        if face.pose is None or np.ptp(face.box.reshape(2, 2), axis=0).max() < MIN_SOURCE_FACE_PX:
            continue
        fit = fit_face_mesh(image, face.box)
        if fit is not None:
            turnable.append(face_sources(image, fit.points, f"{name}#{index}"))
    return turnable


#: Small crops are upsampled this much, inside a replicated border of this many upsampled
#: pixels, for FaceMesh to find and fit them.
TINY_UPSAMPLING, TINY_BORDER = 4, 50


def tiny_faces(crops: np.ndarray) -> tuple[TinyFace, ...]:
    """Small greyscale face crops (N, h, w) with FaceMesh labels; crops it cannot fit are
    left out (their labels would be guesses)."""
    kept = []
    for crop in crops:
        colour = cv2.cvtColor(np.asarray(crop, np.uint8), cv2.COLOR_GRAY2BGR)
        height, width = crop.shape
        big = cv2.resize(colour, (width * TINY_UPSAMPLING, height * TINY_UPSAMPLING),
                         interpolation=cv2.INTER_CUBIC)
        padded = cv2.copyMakeBorder(big, *[TINY_BORDER] * 4, cv2.BORDER_REPLICATE)
        inner = np.float32([TINY_BORDER, TINY_BORDER, TINY_BORDER + big.shape[1],
                            TINY_BORDER + big.shape[0]])
        fit = fit_face_mesh(padded, inner)
        if fit is None or fit.residual > MAX_MESH_RESIDUAL:
            continue
        kept.append(TinyFace(crop=colour, box=(fit.box - TINY_BORDER) / TINY_UPSAMPLING,
                             landmarks=(fit.landmarks - TINY_BORDER) / TINY_UPSAMPLING,
                             pose=fit.pose))
    return tuple(kept)


def build_bank(face_photos: Sequence[Path], background_photos: Sequence[Path],
               teachers: Sequence[Teacher] | None = None,
               small_crops: np.ndarray | None = None) -> FaceBank:
    """Label ``face_photos`` by consensus and gather turnable faces, photos and backgrounds;
    ``small_crops`` (N, h, w greyscale faces) become pasted tiny faces."""
    teachers = teachers or [open_teacher(name) for name in BANK_TEACHERS]
    faces, photos = [], []
    for path in face_photos:
        image = read_image(path)
        agreed = consensus(image, teachers)
        turnable = _turnable_faces(image, agreed, Path(path).name)
        LOG.info("%s: %d faces agreed, %d turnable", Path(path).name, len(agreed), len(turnable))
        faces.extend(turnable)
        if agreed:
            photos.append(PhotoFaces(image=image, labels=labels_of(agreed), name=Path(path).name))
    backgrounds = tuple(read_image(path) for path in background_photos)
    tiny = tiny_faces(small_crops) if small_crops is not None else ()
    LOG.info("%d of %d small crops fitted", len(tiny), 0 if small_crops is None
             else len(small_crops))
    if not faces:
        raise ValueError("face bank has no photo faces: no training photo gave a FaceMesh fit")
    return FaceBank(faces=tuple(faces), backgrounds=backgrounds, photos=tuple(photos),
                    tiny=tiny)
