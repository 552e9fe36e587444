#!/usr/bin/env bash
# Opt-in ARM check: `mos detect` on 64-bit ARM Linux (aarch64) under emulation, with the
# onnxruntime and ncnn backends, writing the detections for test/test_aarch64.py to compare
# with x86. Nothing here needs ARM hardware:
#   - qemu-user-static (Debian) runs aarch64 programs on this machine, one process at a time,
#     as a Cortex-A76 (the Raspberry Pi 5's core);
#   - an arm64 Python 3.11 and its libraries come from Debian 12's own packages, extracted
#     with mmdebstrap (no chroot, no maintainer scripts) into the cache;
#   - the pinned aarch64 wheels (.ci/aarch64-wheels.txt) are installed into a folder beside
#     it, and this checkout's mos_ros goes on the path as it is (pure Python).
#
#   bash .ci/aarch64.sh OUT_DIR IMAGES     writes OUT_DIR/<run>/detections.json for each run:
#                                          onnxruntime, onnxruntime-int8, ncnn, ncnn-int8
#                                          (the default model's files)
#
# MOS_AARCH64_CACHE   where the arm64 root and wheels stay (default ~/.cache/mos_ros/aarch64)
# MOS_AARCH64_RUNS    the runs to do, separated by spaces (default: all four)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${MOS_AARCH64_CACHE:-$HOME/.cache/mos_ros/aarch64}"
SYSROOT="$CACHE/debian12-arm64"
SITE="$CACHE/site-cp311"
PY_HOST="${MOS_PYTHON:-$ROOT/.venv/bin/python}"
[[ $# -eq 2 ]] || { echo "usage: aarch64.sh OUT_DIR IMAGES" >&2; exit 2; }
OUT="$1"
IMAGES="$2"
say() { printf 'aarch64: %s\n' "$*"; }

for tool in qemu-aarch64-static:qemu-user-static mmdebstrap:mmdebstrap; do
    if ! command -v "${tool%%:*}" >/dev/null; then
        say "installing ${tool#*:}"
        apt-get install -y -qq "${tool#*:}" >/dev/null || {
            apt-get update -qq && apt-get install -y -qq "${tool#*:}" >/dev/null; }
    fi
done

if [[ ! -x "$SYSROOT/usr/bin/python3.11" ]]; then
    say "extracting Debian 12 arm64 python3.11 into $SYSROOT"
    rm -rf "$SYSROOT.part"
    mmdebstrap --quiet --variant=extract --arch=arm64 \
        --include=python3.11,libgomp1,libstdc++6,zlib1g bookworm "$SYSROOT.part"
    mv "$SYSROOT.part" "$SYSROOT"
fi

if [[ ! -f "$SITE/.complete" ]]; then
    say "installing the pinned aarch64 wheels into $SITE"
    rm -rf "$SITE"
    constraints="$(mktemp)"
    grep -E '^[A-Za-z0-9_.-]+==' "$ROOT/.ci/requirements.txt" >"$constraints"
    "$PY_HOST" -m pip install -q --target "$SITE" --only-binary=:all: --python-version 3.11 \
        --implementation cp --abi cp311 --abi abi3 --abi none \
        --platform manylinux_2_36_aarch64 --platform manylinux_2_28_aarch64 \
        --platform manylinux_2_24_aarch64 --platform manylinux_2_17_aarch64 \
        --platform manylinux2014_aarch64 -c "$constraints" \
        numpy opencv-python-headless onnxruntime PyYAML tqdm ncnn
    rm -f "$constraints"
    touch "$SITE/.complete"
fi

# qemu-user passes this machine's /proc/cpuinfo (x86) through, and onnxruntime's CPU probe
# crashes on it. Files under the sysroot replace absolute paths for the emulated program, so
# the sysroot gets the /proc/cpuinfo and CPU lists of a two-core Raspberry Pi 5 (Cortex-A76),
# the core qemu emulates here.
write_cpu_files() {
    local i
    mkdir -p "$SYSROOT/proc" "$SYSROOT/sys/devices/system/cpu"
    for i in 0 1; do
        printf '%s\n' "processor	: $i" "BogoMIPS	: 108.00" \
            "Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" \
            "CPU implementer	: 0x41" "CPU architecture: 8" "CPU variant	: 0x4" \
            "CPU part	: 0xd0b" "CPU revision	: 1" ""
    done >"$SYSROOT/proc/cpuinfo"
    for i in possible present online; do echo 0-1 >"$SYSROOT/sys/devices/system/cpu/$i"; done
}
write_cpu_files

arm_python() {
    QEMU_CPU=cortex-a76 QEMU_LD_PREFIX="$SYSROOT" PYTHONPATH="$SITE:$ROOT" PYTHONNOUSERSITE=1 \
        PYTHONDONTWRITEBYTECODE=1 qemu-aarch64-static "$SYSROOT/usr/bin/python3.11" "$@"
}

arm_python -c 'import platform, sys; print("aarch64: python", sys.version.split()[0], "on",
platform.machine())'
MODELS="$ROOT/models"
declare -A RUNS=(
    [onnxruntime]="--backend onnxruntime --model $MODELS/mos-mbv2-faces.onnx"
    [onnxruntime-int8]="--backend onnxruntime --model $MODELS/mos-mbv2-faces.int8.onnx"
    [ncnn]="--backend ncnn --model $MODELS/mos-mbv2-faces.ncnn"
    [ncnn-int8]="--backend ncnn --model $MODELS/mos-mbv2-faces.int8.ncnn"
)
for run in ${MOS_AARCH64_RUNS:-onnxruntime onnxruntime-int8 ncnn ncnn-int8}; do
    [[ -n "${RUNS[$run]:-}" ]] || { echo "aarch64: unknown run $run" >&2; exit 2; }
    start=$SECONDS
    # shellcheck disable=SC2086  # RUNS holds the words of the options
    arm_python -m mos_ros.cli detect "$IMAGES" -o "$OUT/$run" ${RUNS[$run]}
    say "$run: $((SECONDS - start)) s"
done
