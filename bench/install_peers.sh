#!/usr/bin/env bash
# Install the peer load tools that bench/fidelity_run.py --peer runs side by side with latlab,
# each in its own venv under PEERS (default /work/peers/<name>/). Never a latlab dependency,
# never on .ci/run's path. PyPI only (plus the CPU torch wheel in /opt/wheels if present, so
# no CUDA wheels are pulled in).
#
#   bash bench/install_peers.sh [guidellm] [inference-perf] [aiperf]    # default: all three
#
# inference-perf 0.7.0 declares Requires-Python >=3.12; this machine has 3.11 (Debian 12 has
# no 3.12 package) and its source compiles and runs on 3.11 (no 3.12-only syntax or API:
# checked with compileall and a grep for batched/override/Path.walk), so it is installed with
# --ignore-requires-python.
set -euo pipefail

PEERS=${PEERS:-/work/peers}
PYTHON=${PYTHON:-python3}
TORCH_WHEEL=$(ls /opt/wheels/torch-*+cpu-*.whl 2>/dev/null | head -1 || true)

venv() {  # venv NAME -> creates $PEERS/NAME with an up-to-date pip
    "$PYTHON" -m venv "$PEERS/$1"
    "$PEERS/$1/bin/pip" install -q --upgrade pip
}

cpu_torch() {  # cpu_torch NAME -> the CPU torch wheel first, if one is on disk
    if [ -n "$TORCH_WHEEL" ]; then "$PEERS/$1/bin/pip" install -q "$TORCH_WHEEL"; fi
}

install_guidellm() {
    venv guidellm
    cpu_torch guidellm
    "$PEERS/guidellm/bin/pip" install -q 'guidellm[perf]==0.8.1'
}

install_inference_perf() {
    venv inference-perf
    cpu_torch inference-perf
    local pip="$PEERS/inference-perf/bin/pip" python="$PEERS/inference-perf/bin/python"
    # --no-deps: with --ignore-requires-python pip would also pick dependency releases that
    # need 3.12 (numpy 2.5 from source); its own requirements are installed after, normally
    "$pip" install -q --ignore-requires-python --no-deps 'inference-perf==0.7.0'
    "$python" -c "from importlib.metadata import requires
print('\n'.join(r for r in requires('inference-perf') if 'extra ==' not in r))" \
        > "$PEERS/inference-perf/requirements.txt"
    "$pip" install -q -r "$PEERS/inference-perf/requirements.txt"
}

install_aiperf() {
    venv aiperf
    cpu_torch aiperf
    "$PEERS/aiperf/bin/pip" install -q 'aiperf==0.13.0'
}

mkdir -p "$PEERS"
for name in "${@:-guidellm inference-perf aiperf}"; do
    for one in $name; do
        echo "== $one"
        case "$one" in
            guidellm) install_guidellm ;;
            inference-perf) install_inference_perf ;;
            aiperf) install_aiperf ;;
            *) echo "unknown peer: $one (guidellm, inference-perf, aiperf)" >&2; exit 2 ;;
        esac
    done
done
