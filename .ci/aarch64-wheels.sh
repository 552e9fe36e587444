#!/usr/bin/env bash
# Check that every pinned dependency of the light install (and of the ncnn and bag extras) has
# a wheel for 64-bit ARM Linux (Raspberry Pi 5, Jetson) for the Pythons of those boards, and
# record which file pip picks in .ci/aarch64-wheels.txt. Asks PyPI through pip; downloads each
# wheel once into $MOS_AARCH64_WHEELS (default ~/.cache/mos_ros/aarch64/wheels).
#
#   bash .ci/aarch64-wheels.sh            check, print the table
#   bash .ci/aarch64-wheels.sh --write    check and rewrite .ci/aarch64-wheels.txt
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/.ci/requirements.txt"
OUT="$ROOT/.ci/aarch64-wheels.txt"
WHEELS="${MOS_AARCH64_WHEELS:-$HOME/.cache/mos_ros/aarch64/wheels}"
PY="${MOS_PYTHON:-python3}"
# The light install's requirements and those of the [ncnn] and [bag] extras, with the
# pinned libraries they pull in (names as in requirements.txt; onnxruntime also pulls in
# flatbuffers and packaging, pure-Python wheels for every platform).
PACKAGES=(numpy opencv-python-headless onnxruntime PyYAML tqdm ncnn rosbags mcap apsw
          backports.zstd lz4 zstandard ruamel.yaml typing_extensions
          protobuf)
# Pythons the pins serve (numpy 2.4 needs 3.11+): 3.11 (Raspberry Pi OS 12 / Debian 12), 3.12
# (Ubuntu 24.04: JetPack 7), 3.13 (Raspberry Pi OS 13 / Debian 13); their glibc is 2.36 to
# 2.41, so wheels up to manylinux_2_36 install on all of them.
PYTHONS=(3.11 3.12 3.13)
PLATFORMS=(manylinux_2_36_aarch64 manylinux_2_35_aarch64 manylinux_2_34_aarch64
           manylinux_2_31_aarch64 manylinux_2_28_aarch64 manylinux_2_27_aarch64
           manylinux_2_26_aarch64 manylinux_2_24_aarch64 manylinux2014_aarch64)

pin() {
    local line
    line="$(grep -iE "^$1==" "$REQ" || true)"
    [[ -n "$line" ]] || { echo "aarch64-wheels: $1 is not pinned in $REQ" >&2; exit 2; }
    echo "$line"
}

mkdir -p "$WHEELS"
table="$(mktemp)"
trap 'rm -f "$table"' EXIT
missing=0
for version in "${PYTHONS[@]}"; do
    tag="cp${version/./}"
    for name in "${PACKAGES[@]}"; do
        requirement="$(pin "$name")"
        dest="$WHEELS/$tag"
        args=(download -q --no-deps --only-binary=:all: --python-version "$version"
              --implementation cp --abi "$tag" --abi abi3 --abi none -d "$dest")
        for platform in "${PLATFORMS[@]}"; do args+=(--platform "$platform"); done
        if "$PY" -m pip "${args[@]}" "$requirement" >/dev/null 2>&1; then
            base="${requirement%%==*}"
            file="$(cd "$dest" && ls -1 | grep -iE "^${base//[-_.]/[-_.]}-${requirement#*==}-" \
                | head -n 1)"
            echo "$tag $requirement $file" >>"$table"
        else
            echo "$tag $requirement MISSING" >>"$table"
            missing=1
        fi
    done
done
column -t "$table"
if [[ "${1:-}" == "--write" ]]; then
    { echo "# Wheels pip picks for 64-bit ARM Linux (aarch64), written by .ci/aarch64-wheels.sh"
      echo "# python  requirement  wheel"
      column -t "$table"; } >"$OUT"
    echo "aarch64-wheels: wrote $OUT"
fi
exit "$missing"
