"""The ROS 2 package, its pinned environment and the CI entry point.

package.xml must be a valid ROS 2 package manifest (what it declares: test_ros_dependencies);
.ci/requirements.txt pins everything; .ci/run runs the README's test command; .ci/setup.sh
does nothing when nothing it depends on changed; the messages in msg/ are importable.
"""
import configparser
import importlib
import importlib.metadata
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / '.ci' / 'setup.sh'
REQUIREMENTS = ROOT / '.ci' / 'requirements.txt'
#: Installed with --no-deps (their declared dependencies are obsolete pins).
REQUIREMENTS_NODEPS = ROOT / '.ci' / 'requirements-nodeps.txt'

def _requirement_pins() -> list:
    """Return (line, name, version) for each line of both requirement files."""
    pins = []
    lines = REQUIREMENTS.read_text().splitlines() + REQUIREMENTS_NODEPS.read_text().splitlines()
    for line in lines:
        line = line.split('#')[0].strip()
        if line:
            match = re.fullmatch(r'([A-Za-z0-9_.\-]+)(\[[\w,\-]+\])?==([\w.+!\-]+)', line)
            pins.append((line, match and match.group(1), match and match.group(3)))
    return pins


def _canonical(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def test_package_xml_is_a_valid_ros2_package():
    catkin_pkg = pytest.importorskip('catkin_pkg.package', reason='catkin_pkg not installed')
    package = catkin_pkg.parse_package(str(ROOT / 'package.xml'))
    package.validate()
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'setup.cfg')
    assert package.name == 'mos_ros'
    assert package.package_format == 3
    assert package.version == cfg['metadata']['version']
    assert [str(lic) for lic in package.licenses] == ['Apache-2.0']
    assert [e.content for e in package.exports if e.tagname == 'build_type'] == ['ament_cmake']
    assert 'rosidl_interface_packages' in [g.name for g in package.member_of_groups]
    buildtool = {d.name for d in package.buildtool_depends}
    assert {'ament_cmake', 'ament_cmake_python', 'rosidl_default_generators'} <= buildtool
    assert 'rosidl_default_runtime' in {d.name for d in package.exec_depends}


def test_requirements_are_all_pinned_and_cover_setup_cfg():
    pins = _requirement_pins()
    unpinned = [line for line, name, _ in pins if name is None]
    assert not unpinned, f'not pinned with ==: {unpinned}'
    names = [_canonical(name) for _, name, _ in pins]
    assert len(names) == len(set(names)), 'a requirement is listed twice'
    assert ('torch==2.13.0', 'torch', '2.13.0') in pins
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'setup.cfg')
    wanted = cfg['options']['install_requires'].split() + [
        item.strip() for value in cfg['options.extras_require'].values()
        for item in value.split(';')]
    uncovered = [w for w in wanted if w and _canonical(w) not in names]
    assert not uncovered, (f'setup.cfg needs these, the requirement files do not pin them: '
                           f'{uncovered}')


def test_environment_has_the_pinned_versions():
    wrong = []
    for _, name, version in _requirement_pins():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is None or installed.split('+')[0] != version:
            wrong.append(f'{name}=={version} (installed: {installed})')
    assert not wrong, f'run bash .ci/setup.sh; environment differs from the pins: {wrong}'


def _readme_test_command() -> str:
    readme = ROOT / 'README.md'
    if not readme.exists():
        pytest.skip('README.md does not exist yet')
    blocks = re.findall(r'```(?:bash|sh)\n(.*?)```', readme.read_text(), re.S)
    commands = [line.split('#')[0].strip() for block in blocks for line in block.splitlines()]
    tests = [c for c in commands if 'pytest' in c]
    assert len(tests) == 1, f'README.md should show one test command, shows {tests}'
    return tests[0]


def test_ci_run_calls_the_readme_test_command_verbatim():
    command = _readme_test_command()
    run = ROOT / '.ci' / 'run'
    lines = run.read_text().splitlines()
    assert lines[0] == '#!/usr/bin/env bash'
    assert 'set -euo pipefail' in lines
    assert command in lines
    assert os.access(run, os.X_OK)
    subprocess.run(['bash', '-n', str(run)], check=True)
    subprocess.run(['bash', '-n', str(SETUP)], check=True)


@pytest.fixture
def repo_copy(tmp_path):
    """Copy setup.sh and the files it hashes into a scratch repo (no msg/, nothing to build)."""
    root = tmp_path / 'repo'
    (root / '.ci').mkdir(parents=True)
    for name in ('.ci/setup.sh', '.ci/requirements.txt', 'setup.cfg', 'setup.py',
                 'package.xml', 'CMakeLists.txt'):
        shutil.copy(ROOT / name, root / name)
    return root


@pytest.fixture
def spy_venv(tmp_path):
    """Return a venv whose python only records how it was called."""
    venv = tmp_path / 'venv'
    (venv / 'bin').mkdir(parents=True)
    python = venv / 'bin' / 'python'
    python.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path}/calls\n')
    python.chmod(0o755)
    return venv


def _setup(root: Path, venv: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MOS_VENV=str(venv))
    return subprocess.run(['bash', str(root / '.ci' / 'setup.sh'), *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_setup_check_reports_a_venv_without_stamp_and_changes_nothing(repo_copy, spy_venv):
    result = _setup(repo_copy, spy_venv, '--check')
    assert result.returncode == 1
    assert re.fullmatch(r'[0-9a-f]{64}\n', result.stdout)
    assert sorted(p.name for p in spy_venv.rglob('*')) == ['bin', 'python']
    assert not (spy_venv.parent / 'calls').exists()


def test_setup_stamp_follows_requirements_setup_cfg_and_messages(repo_copy, spy_venv):
    def current_hash():
        return _setup(repo_copy, spy_venv, '--check').stdout.strip()

    first = current_hash()
    (spy_venv / '.mos_setup_stamp').write_text(first + '\n')
    assert _setup(repo_copy, spy_venv, '--check').returncode == 0

    (repo_copy / 'msg').mkdir()
    (repo_copy / 'msg' / 'Probe.msg').write_text('float32 x\n')
    with_msg = current_hash()
    (repo_copy / 'msg' / 'Probe.msg').write_text('float64 x\n')
    changed_msg = current_hash()
    (repo_copy / 'msg' / 'Probe.msg').unlink()
    assert current_hash() == first
    interface = repo_copy / '.ci' / 'interfaces' / 'probe_msgs' / 'msg'
    interface.mkdir(parents=True)
    (interface / 'Probe.msg').write_text('float32 x\n')
    with_interface = current_hash()
    shutil.rmtree(repo_copy / '.ci' / 'interfaces')
    assert current_hash() == first
    with open(repo_copy / '.ci' / 'requirements.txt', 'a') as f:
        f.write('# comment\n')
    changed_requirements = current_hash()
    with open(repo_copy / 'setup.cfg', 'a') as f:
        f.write('\n')
    changed_cfg = current_hash()

    hashes = [first, with_msg, changed_msg, with_interface, changed_requirements,
              changed_cfg]
    assert len(set(hashes)) == len(hashes)
    assert _setup(repo_copy, spy_venv, '--check').returncode == 1


def test_setup_with_matching_stamp_only_checks_the_interpreter(repo_copy, spy_venv):
    stamp = spy_venv / '.mos_setup_stamp'
    stamp.write_text(_setup(repo_copy, spy_venv, '--check').stdout)

    result = _setup(repo_copy, spy_venv)

    assert result.returncode == 0, result.stderr
    assert result.stdout == f'setup: up to date ({spy_venv})\n'
    assert (spy_venv.parent / 'calls').read_text() == "-S -c \n"  # no pip, no build
    assert stamp.read_text() == _setup(repo_copy, spy_venv, '--check').stdout


def test_setup_rejects_unknown_arguments(repo_copy, spy_venv):
    result = _setup(repo_copy, spy_venv, '--frobnicate')
    assert result.returncode != 0
    assert 'unknown argument' in result.stderr


def test_second_setup_in_this_environment_is_a_no_op():
    venv = Path(sys.prefix)
    if _setup(ROOT, venv, '--check').returncode != 0:
        pytest.skip(f'{venv} is not up to date by .ci/setup.sh (not made by it, or inputs '
                    'changed since): running it here would install')
    stamp = (venv / '.mos_setup_stamp').read_text()
    result = _setup(ROOT, venv)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f'setup: up to date ({venv})\n'
    assert (venv / '.mos_setup_stamp').read_text() == stamp


MESSAGES = sorted(p.stem for p in (ROOT / 'msg').glob('*.msg'))


@pytest.mark.parametrize('name', MESSAGES)
def test_messages_are_built_into_the_environment(name):
    serialization = pytest.importorskip('rclpy.serialization', reason='rclpy not installed')
    msg_module = importlib.import_module('mos_ros.msg')
    message_type = getattr(msg_module, name)
    # Generated code lives in the environment, never in the source tree.
    assert ROOT / 'mos_ros' not in Path(msg_module.__file__).parents
    message = message_type()
    data = serialization.serialize_message(message)
    assert serialization.deserialize_message(data, message_type) == message
