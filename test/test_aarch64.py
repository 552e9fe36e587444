"""64-bit ARM (Raspberry Pi 5, Jetson): every pinned dependency of the light install and of
the ncnn and bag extras has an aarch64 wheel (.ci/aarch64-wheels.txt, kept current with the
pins), and, opt-in with MOS_AARCH64_TESTS=1 (minutes: emulated), `mos detect` run on aarch64
under qemu finds the same faces as on this machine with onnxruntime and ncnn.
"""
import configparser
import json
import os
from pathlib import Path
import re
import subprocess

import numpy as np
import pytest

from mos_ros.backends import device_options
from mos_ros.core.image_io import read_image
from mos_ros.detector import FaceDetector

ROOT = Path(__file__).resolve().parents[1]
WHEELS = ROOT / '.ci' / 'aarch64-wheels.txt'
SCRIPT = ROOT / '.ci' / 'aarch64.sh'
#: The Pythons the check covers (numpy 2.4 needs 3.11+): Debian 12 / Raspberry Pi OS 12,
#: Ubuntu 24.04 (JetPack 7), Debian 13.
PYTHONS = ('cp311', 'cp312', 'cp313')
#: The emulated runs (.ci/aarch64.sh): model file and the largest differences from x86
#: allowed: pixels (boxes, landmarks) as a fraction of the face's width plus a constant,
#: degrees, score. fp32 differs by float rounding only; int8 kernels round differently on ARM
#: and x86 (measured: up to 4% of a face's width and 1.5 degrees for ncnn-int8).
RUNS = {
    'onnxruntime': ('mos-mbv2-faces.onnx', 0.0, 0.1, 0.1, 0.002),
    'onnxruntime-int8': ('mos-mbv2-faces.int8.onnx', 0.05, 0.5, 2.0, 0.01),
    'ncnn': ('mos-mbv2-faces.ncnn', 0.0, 0.1, 0.1, 0.002),
    'ncnn-int8': ('mos-mbv2-faces.int8.ncnn', 0.05, 0.5, 2.0, 0.01),
}


def _canonical(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def _pins() -> dict:
    pins = {}
    for line in (ROOT / '.ci' / 'requirements.txt').read_text().splitlines():
        match = re.fullmatch(r'([A-Za-z0-9_.\-]+)==(\S+)', line.split('#')[0].strip())
        if match:
            pins[_canonical(match.group(1))] = match.group(2)
    return pins


def _recorded() -> dict:
    """{(python tag, canonical name): (version, wheel file)} from .ci/aarch64-wheels.txt."""
    recorded = {}
    for line in WHEELS.read_text().splitlines():
        if line.startswith('#') or not line.strip():
            continue
        tag, requirement, wheel = line.split()
        name, version = requirement.split('==')
        recorded[(tag, _canonical(name))] = (version, wheel)
    return recorded


def _inference_requirements() -> set:
    """The light install's requirements and the ncnn and bag extras', canonical names."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'setup.cfg')
    extras = cfg['options.extras_require']
    names = cfg['options']['install_requires'].split()
    names += [n.strip() for extra in ('ncnn', 'bag') for n in extras[extra].split(';')]
    return {_canonical(n) for n in names if n}


def test_every_pinned_inference_dependency_has_an_aarch64_wheel():
    pins, recorded = _pins(), _recorded()
    for tag in PYTHONS:
        checked = {name for t, name in recorded if t == tag}
        assert _inference_requirements() <= checked, f'{tag}: not checked'
        for name in checked:
            version, wheel = recorded[(tag, name)]
            assert version == pins[name], (f'{name} is pinned at {pins[name]} but was checked at '
                                           f'{version}: run bash .ci/aarch64-wheels.sh --write')
            assert wheel.endswith('.whl') and ('aarch64' in wheel or wheel.endswith('-any.whl')), \
                f'{tag}: no aarch64 wheel of {name}=={version} ({wheel})'


def _x86_faces(model: Path, image: np.ndarray) -> list:
    backend = 'ncnn' if model.suffix == '.ncnn' else 'onnxruntime'
    detector = FaceDetector.open(model, backend, device_options(backend, '', None))
    return [face.to_dict() for face in detector.detect(image)]


def check_against_x86(out: Path, images: Path) -> None:
    """Assert that every run in ``out`` found the faces this machine finds in ``images``."""
    for run, (model, relative, pixels, degrees, score) in RUNS.items():
        frames = json.loads((out / run / 'detections.json').read_text())['frames']
        assert sorted(frames) == sorted(p.stem for p in images.glob('*.jpg'))
        for name, arm in frames.items():
            x86 = _x86_faces(ROOT / 'models' / model, read_image(images / f'{name}.jpg'))
            assert len(arm) == len(x86) >= 1, f'{run} {name}'
            for a, b in zip(arm, x86):
                tolerance = pixels + relative * (b['box'][2] - b['box'][0])
                np.testing.assert_allclose(a['box'], b['box'], atol=tolerance)
                np.testing.assert_allclose(a['landmarks'], b['landmarks'], atol=tolerance)
                np.testing.assert_allclose([a['yaw'], a['pitch'], a['roll']],
                                           [b['yaw'], b['pitch'], b['roll']], atol=degrees)
                assert abs(a['score'] - b['score']) <= score


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get('MOS_AARCH64_TESTS') != '1',
                    reason='emulated aarch64 run: opt-in with MOS_AARCH64_TESTS=1')
def test_emulated_aarch64_finds_the_same_faces_as_x86(tmp_path):
    images = ROOT / 'models' / 'demo'
    subprocess.run(['bash', str(SCRIPT), str(tmp_path), str(images)], check=True,
                   timeout=3600)
    check_against_x86(tmp_path, images)
