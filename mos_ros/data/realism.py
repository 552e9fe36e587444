"""How real do rendered faces look? Real detectors' hit rate and confidence on them.

A cheap realism proxy: the teachers were trained on real photos only, so the share of rendered
faces they find (and their score) says how close each kind of face is to a real one. Scenes are
composed with one kind of face at a time (turned photo faces, procedural faces) from the same
bank and settings as the training set.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mos_ros.core.nms import iou_matrix
from mos_ros.data.engine import EngineConfig
from mos_ros.data.teachers import Teacher, open_teacher, to_mesh_box
from mos_ros.scenes.bank import FaceBank, load_bank
from mos_ros.scenes.composer import compose
from mos_ros.scenes.config import SceneConfig
from mos_ros.scenes.sampling import seeded_rng

#: Scene settings that keep only one kind of face: name -> SceneConfig overrides.
FACE_KINDS = {
    "turned photo faces": {"procedural_fraction": 0.0},
    "procedural faces": {"procedural_fraction": 1.0},
}
REALISM_TEACHERS = ("yuface", "centerface")
MIN_FACE_PX = 40.0
MATCH_IOU = 0.4


@dataclass(frozen=True)
class Realism:
    """One teacher on one kind of face: faces found of those present, and their mean score."""

    kind: str
    teacher: str
    found: int
    faces: int
    mean_score: float

    @property
    def hit_rate(self) -> float:
        """Share of the faces the teacher found."""
        return self.found / self.faces if self.faces else 0.0


def _single_kind(config: SceneConfig, overrides: dict) -> SceneConfig:
    return dataclasses.replace(config, photo_scene_probability=0.0, tiny_fraction=0.0,
                               empty_probability=0.0, occlusion_probability=0.0,
                               crowd_probability=0.0, **overrides)


def _hits(teacher: Teacher, image: np.ndarray, boxes: np.ndarray) -> tuple[int, list[float]]:
    found = teacher.detect(image)
    if not found or not len(boxes):
        return 0, []
    overlap = iou_matrix(boxes, np.stack([to_mesh_box(face) for face in found]))
    best = overlap.argmax(axis=1)
    hit = overlap.max(axis=1) >= MATCH_IOU
    return int(hit.sum()), [found[j].score for j in best[hit]]


def measure_realism(bank: FaceBank, config: SceneConfig, scenes: int = 40, seed: int = 99
                    ) -> list[Realism]:
    """Teachers' hit rate on faces of at least ``MIN_FACE_PX`` of each kind in ``scenes``
    scenes per kind."""
    teachers = [open_teacher(name) for name in REALISM_TEACHERS]
    results = []
    for kind, overrides in FACE_KINDS.items():
        kind_config = _single_kind(config, overrides)
        counts = {t.name: [0, []] for t in teachers}
        faces = 0
        for index in range(scenes):
            image, labels = compose(seeded_rng(seed, index), kind_config, bank)
            sides = np.ptp(labels.boxes.reshape(-1, 2, 2), axis=1).max(axis=1)
            boxes = labels.boxes[sides >= MIN_FACE_PX]
            faces += len(boxes)
            for teacher in teachers:
                hits, scores = _hits(teacher, image, boxes)
                counts[teacher.name][0] += hits
                counts[teacher.name][1] += scores
        for name, (found, scores) in counts.items():
            results.append(Realism(kind, name, found, faces,
                                   float(np.mean(scores)) if scores else 0.0))
    return results


def realism_table(results: list[Realism]) -> str:
    """A markdown table: kind of face, teacher, hit rate (found/faces), mean score."""
    lines = [f"| faces (≥{MIN_FACE_PX:g} px) | teacher | found | mean score |",
             "|---|---|---|---|"]
    lines += [f"| {r.kind} | {r.teacher} | {100 * r.hit_rate:.1f} % ({r.found}/{r.faces}) | "
              f"{r.mean_score:.2f} |" for r in results]
    return "\n".join(lines) + "\n"


def realism_of_engine(config_path: str | Path, scenes: int = 40) -> str:
    """The table for the bank and the first stage's scene settings of a data engine config."""
    config = EngineConfig.from_yaml(config_path)
    return realism_table(measure_realism(load_bank(config.bank_path), config.stages[0].scene,
                                         scenes))
