"""The light install: a wheel built from the checkout, installed into a fresh venv without
torch, detects faces with `mos detect` using only what the wheel ships (the default model,
found through importlib.resources), and names the extra to install when a command needs one.
"""
import configparser
import json
import os
import re
import shutil
from pathlib import Path
import subprocess
import sys
import zipfile

import pytest

from mos_ros.detector import FaceDetector
from mos_ros.core.image_io import read_image
from mos_ros.resources import default_model_path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / 'models' / 'demo' / 'astronaut.jpg'
INSTALL_TIMEOUT_S = 600
#: The light install's wheels, collected by .ci/setup.sh into the venv that runs the tests.
WHEELHOUSE = Path(sys.prefix) / 'wheelhouse'
#: What a checkout holds besides its sources (environments, outputs, caches).
NOT_SOURCES = ('.git', '.venv', 'build', 'install', 'log', 'out', '__pycache__', '*.egg-info',
               '.pytest_cache')


def _pins_without_extras() -> str:
    """The pins of .ci/requirements.txt as a pip constraints file (which allows no extras)."""
    lines = (ROOT / '.ci' / 'requirements.txt').read_text().splitlines()
    return '\n'.join(line for line in lines if '==' in line and '[' not in line) + '\n'


def _clean_env() -> dict:
    """The environment minus anything that would put the checkout or its venv on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'VIRTUAL_ENV')}
    env['PATH'] = os.pathsep.join(p for p in env.get('PATH', '').split(os.pathsep)
                                  if not p.startswith(str(ROOT)))
    return env


def _offline_sources() -> list[str]:
    """pip options that take the base dependencies from the wheels .ci/setup.sh collected in
    the venv, without the network; none where they are missing (pip then asks the index)."""
    return ['--no-index', '--find-links', str(WHEELHOUSE)] if WHEELHOUSE.is_dir() else []


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the checkout (no build/ left over from earlier)."""
    out = tmp_path_factory.mktemp('wheel')
    source = out / 'source'
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
                    '--no-build-isolation', '-w', str(out), str(source)],
                   check=True, timeout=INSTALL_TIMEOUT_S, cwd=out)
    (found,) = out.glob('mos_ros-*.whl')
    return found


@pytest.fixture(scope='module')
def light_venv(wheel, tmp_path_factory) -> Path:
    """A fresh venv holding the wheel and its base dependencies, at the project's pins."""
    base = tmp_path_factory.mktemp('light')
    venv = base / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', '--without-pip', str(venv)], check=True)
    constraints = base / 'constraints.txt'
    constraints.write_text(_pins_without_extras())
    subprocess.run([sys.executable, '-m', 'pip', '--python', str(venv / 'bin' / 'python'),
                    'install', '-q', '-c', str(constraints), *_offline_sources(), str(wheel)],
                   check=True, timeout=INSTALL_TIMEOUT_S, env=_clean_env(), cwd=base)
    return venv


def _run_in(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / 'bin' / args[0]), *args[1:]], capture_output=True,
                          text=True, timeout=300, env=_clean_env(), cwd=cwd)


def test_wheel_ships_the_default_model_messages_and_config(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ('models/mos-mbv2-faces.int8.onnx', 'models/mos-mbv2-faces.onnx',
                    'models/mos-mbv2-faces.ncnn/model.ncnn.param', 'models/README.md',
                    'models/demo/SOURCES.md', 'msg/Face.msg', 'msg/FaceArray.msg',
                    'config/mos.yaml'):
        assert f'mos_ros/share/{shipped}' in names
    assert not [n for n in names if n.startswith(('test/', 'mos_ros/share/models/mos-s-'))]


def test_base_requirements_leave_torch_to_an_extra():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'setup.cfg')
    base = cfg['options']['install_requires'].split()
    assert 'onnxruntime' in base
    assert not {'torch', 'onnx', 'scipy', 'matplotlib', 'rosbags'} & set(base)


def test_light_install_detects_faces_like_the_checkout(light_venv, tmp_path):
    has_torch = _run_in(light_venv, 'python', '-c', 'import torch', cwd=tmp_path)
    assert has_torch.returncode != 0 and 'torch' in has_torch.stderr
    result = _run_in(light_venv, 'mos', 'detect', str(PHOTO), '-o', str(tmp_path / 'out'),
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    detections = json.loads((tmp_path / 'out' / 'detections.json').read_text())
    faces = detections['frames'][PHOTO.stem]
    expected = FaceDetector.open(default_model_path()).detect(read_image(PHOTO))
    assert len(faces) == len(expected) >= 1
    for face, reference in zip(faces, expected):
        assert face['box'] == pytest.approx([float(v) for v in reference.box], abs=0.05)
        assert face['yaw'] == pytest.approx(reference.pose.yaw, abs=0.05)


def test_light_install_names_the_extra_a_command_needs(light_venv, tmp_path):
    bag_args = ('bag', str(tmp_path / 'in.mcap'), '-o', str(tmp_path / 'out'))
    for args, extra in ((('detect', str(PHOTO), '--backend', 'torch'), 'torch'),
                        (('detect', str(PHOTO), '--backend', 'ncnn'), 'ncnn'),
                        (bag_args, 'bag')):
        result = _run_in(light_venv, 'mos', *args, cwd=tmp_path)
        assert result.returncode == 2
        command = f'mos {args[0]}'
        assert re.fullmatch(rf"{command}: error: {command} needs the optional dependency "
                            rf"'\w+': pip install 'mos_ros\[{extra}\]'\n", result.stderr)
