#!/usr/bin/env bash
# The GPU check, on a GPU machine, in one command (at most 8 minutes):
#
#   scripts/gpu_check/run.sh OUT [--device cpu] [--steps a,b] [--budget SECONDS]
#
# Installs the wheels that scripts/gpu_check/prepare.sh put into .gpu_check/wheels
# when the machine lacks them (it may reach no package registry), then runs
# scripts/gpu_check/check.py: reports in OUT (report.md, report.json, check.log).
# PYTHON picks the interpreter (default python3); --device cpu runs the same steps
# at tiny sizes without a GPU (the test suite does).
set -uo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: scripts/gpu_check/run.sh OUT [check.py options]}
shift
python=${PYTHON:-python3}
bundle=${GPU_CHECK_BUNDLE:-.gpu_check}
mkdir -p "$out"
if ! "$python" -c "import hydra, omegaconf" 2>/dev/null; then
    if ! ls "$bundle"/wheels/*.whl >/dev/null 2>&1; then
        echo "error: hydra-core is not installed and $bundle/wheels has no wheels" \
            "(run scripts/gpu_check/prepare.sh first)" >&2
        exit 2
    fi
    site=$(mktemp -d -t gpu_check_site.XXXX)
    echo "installing $(ls "$bundle"/wheels/*.whl | wc -l) wheels from $bundle/wheels into $site"
    "$python" -m pip install --quiet --no-index --no-deps --no-compile --target "$site" \
        "$bundle"/wheels/*.whl || exit 2
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# what the project imports beyond the wheels carried: the machine must have it
missing=$("$python" -c "import importlib.util as u; print(' '.join(n for n in
    ['torch', 'lightning', 'torchmetrics', 'numpy', 'numba', 'rich', 'matplotlib',
     'tensorboard', 'pytest', 'yaml'] if u.find_spec(n) is None))")
if [ -n "$missing" ]; then
    echo "error: $python lacks $missing (the GPU check carries only hydra-core," \
        "omegaconf and antlr4 as wheels)" >&2
    exit 2
fi
exec "$python" scripts/gpu_check/check.py --out "$out" --bundle "$bundle" "$@"
