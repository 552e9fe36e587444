"""The face bank: what real-face scenes are made of, and its file.

Turnable photo faces (each with its mirror), face-free background photos, labelled training
photos and small face crops. An empty bank is valid: its scenes hold procedural faces only.
:mod:`mos_ros.data.bank` builds a bank from photos; the render workers read it back here.
"""
from __future__ import annotations

import functools
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mos_ros.core.labels import FaceLabels
from mos_ros.scenes.reface import FaceSource

BANK_FILE = "bank.pkl"


@dataclass(frozen=True)
class PhotoFaces:
    """A real training photo and its teacher-consensus faces."""

    image: np.ndarray
    labels: FaceLabels
    name: str


@dataclass(frozen=True)
class TinyFace:
    """A small face crop pasted as it is (too little texture to turn), with its labels in
    crop pixels: box, landmarks and the pose FaceMesh fitted on the upsampled crop."""

    crop: np.ndarray
    box: np.ndarray
    landmarks: np.ndarray
    pose: tuple[float, float, float]


@dataclass(frozen=True)
class FaceBank:
    """Turnable photo faces (each source with its mirror), face-free backgrounds, labelled
    training photos and small face crops; any of them may be empty."""

    faces: tuple[tuple[FaceSource, ...], ...] = ()
    backgrounds: tuple[np.ndarray, ...] = ()
    photos: tuple[PhotoFaces, ...] = ()
    tiny: tuple[TinyFace, ...] = ()


def save_bank(bank: FaceBank, path: str | Path) -> Path:
    """Store the bank for the render workers (a private cache of the scene composer)."""
    path = Path(path)
    path.write_bytes(pickle.dumps(bank, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def load_bank(path: str | Path) -> FaceBank:
    """Read a bank written by :func:`save_bank`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"face bank not found: {path} (run `mos data bank` first)")
    bank = pickle.loads(path.read_bytes())
    if not isinstance(bank, FaceBank):
        raise ValueError(f"{path} does not hold a face bank")
    return bank


@functools.lru_cache(maxsize=1)
def cached_bank(path: str) -> FaceBank:
    """The bank at ``path``, read once per process (each render worker reads its own)."""
    return load_bank(path)
