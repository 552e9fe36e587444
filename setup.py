"""pip install of the mos_ros Python package (core, model, backends, CLI, nodes).

Metadata and dependencies are in setup.cfg. This file adds the shipped files a built wheel
needs beside the code: the default model, the demo photos, the message definitions and the
node parameters go into the package as ``mos_ros/share/<folder>/``, where
:func:`mos_ros.resources.share_dirs` finds them. A checkout (and an editable install) reads
them from the repository's top-level folders instead, so nothing is copied there.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: Repository folder -> glob patterns of the files shipped from it (relative to the folder).
SHARED_FILES = {
    "models": ("README.md", "mos-mbv2-faces.onnx", "mos-mbv2-faces.int8.onnx",
               "mos-mbv2-faces.pt", "mos-mbv2-faces.ncnn/*", "mos-mbv2-faces.int8.ncnn/*",
               "demo/*"),
    "msg": ("*.msg",),
    "config": ("mos.yaml", "mos.rviz", "fastdds_camera_frames.xml"),
    "launch": ("*.py",),
}
SHARE_PACKAGE_DIR = Path("mos_ros") / "share"


def shared_files() -> list[Path]:
    """The shipped files, relative to the repository root, in a stable order."""
    files: set[Path] = set()
    for folder, patterns in SHARED_FILES.items():
        for pattern in patterns:
            files.update(p.relative_to(ROOT) for p in (ROOT / folder).glob(pattern)
                         if p.is_file())
    return sorted(files)


class BuildPyWithShare(build_py):
    """build_py that also copies :func:`shared_files` under ``mos_ros/share/``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for relative in shared_files():
            target = Path(self.build_lib) / SHARE_PACKAGE_DIR / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / relative, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        """Listed so that the wheel's RECORD and ``--record`` name the copied files too."""
        return super().get_outputs(include_bytecode) + [
            str(Path(self.build_lib) / SHARE_PACKAGE_DIR / p) for p in shared_files()]


setup(cmdclass={"build_py": BuildPyWithShare})
