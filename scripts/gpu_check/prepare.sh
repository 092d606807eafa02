#!/usr/bin/env bash
# Prepares, on a machine that reaches PyPI, what the GPU check needs on a GPU machine
# that reaches no package registry, into .gpu_check/ (git-ignored; GPU_CHECK_BUNDLE
# names another folder):
#
#   wheels/   Python 3.12 manylinux x86-64 wheels of what a CUDA PyTorch image lacks
#             and the project imports: hydra-core, omegaconf, the antlr4 runtime
#   sdists/   the source distributions of causal-conv1d and mamba-ssm (built there,
#             for that GPU's architecture alone, if time is left)
#   MANIFEST  name, size and sha256 of each file
#
# Then, on the GPU machine: scripts/gpu_check/run.sh OUT (README "GPUs").
set -euo pipefail
cd "$(dirname "$0")/../.."
bundle=${GPU_CHECK_BUNDLE:-.gpu_check}
python=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
# the versions the test suite runs with (pyproject.toml allows ranges)
wheels=(hydra-core==1.3.8 omegaconf==2.3.1)
antlr=antlr4-python3-runtime==4.9.3   # hydra's pin; PyPI has only its source
# the latest releases (CUDA 13 needs causal-conv1d >= 1.5.3.post1, mamba-ssm >= 2.2.6.post3)
kernels=(causal-conv1d==1.7.0 mamba-ssm==2.3.2.post1)
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 any; do
    platforms+=(--platform "$tag")
done

staging="$bundle.partial"
rm -rf "$staging"
mkdir -p "$staging/wheels" "$staging/sdists"
"$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${platforms[@]}" -d "$staging/wheels" "${wheels[@]}"
"$python" -m pip wheel --quiet --no-deps -w "$staging/wheels" "$antlr"
# metadata without a CUDA build (this machine may have no CUDA): skip it, and use the
# torch installed here rather than an isolated build environment that would fetch one
CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE MAMBA_SKIP_CUDA_BUILD=TRUE \
    "$python" -m pip download --quiet --no-deps --no-binary=:all: --no-build-isolation \
    -d "$staging/sdists" "${kernels[@]}"
(cd "$staging" && find wheels sdists -type f | sort | while read -r f; do
    printf '%s  %s  %s\n' "$(sha256sum "$f" | cut -d' ' -f1)" "$(stat -c %s "$f")" "$f"
done) > "$staging/MANIFEST"
rm -rf "$bundle"
mv "$staging" "$bundle"
total=$(du -sk "$bundle" | cut -f1)
echo "prepared $bundle: $(grep -c . "$bundle/MANIFEST") files, ${total} KiB"
if [ "$total" -gt $((48 * 1024)) ]; then
    echo "warning: $bundle is over 48 MiB; with the repository it may not fit a 64 MiB transfer" >&2
fi
