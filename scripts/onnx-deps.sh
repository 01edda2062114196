# shellcheck shell=bash
# The ONNX conformance data, installed when missing and exported for the
# test process. Sourced by scripts/test.sh (it must not `exit`); a second
# run only checks and exports.
#
# - The `onnx` Python package (pinned) into `.venv/` (see venv.sh).
# - Its backend test data written out by scripts/onnx_data.py into
#   target/onnx-data/: the light models with their outputs, and every node
#   test case as `model.onnx` + `test_data_set_*/{input,output}_*.pb`.
#   Regenerated when the installed `onnx` version changes.
# - onnxruntime (pinned), the numerics oracle and the benchmark peer, and
#   the CNN-shaped models scripts/onnx_models.py writes with its outputs
#   into target/onnx-models/ (regenerated when either changes).
#
# Exports TEXPR_ONNX_DATA and TEXPR_ONNX_MODELS (those folders). Nothing here
# fails the sourcing script: the tests say what is missing (and fail under
# CI=true).

_texpr_onnx_deps() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    # shellcheck source=/dev/null
    source "$root/scripts/venv.sh"
    _texpr_venv "$root" || return 0
    local py="$root/.venv/bin/python"
    # -I: the repository's own `onnx/` folder (a Rust crate) must not be
    # imported as a namespace package from the working directory.
    if ! "$py" -I -c 'import onnx.version' >/dev/null 2>&1; then
        echo "onnx-deps: installing the onnx package into $root/.venv" >&2
        "$py" -m pip install -q --disable-pip-version-check 'onnx==1.23.*' ||
            { echo "onnx-deps: could not install onnx" >&2; return 0; }
    fi
    local out="$root/target/onnx-data" version
    version="$("$py" -I -c 'import onnx; print(onnx.__version__)')" ||
        { echo "onnx-deps: the onnx package does not import" >&2; return 0; }
    if ! grep -q "^onnx $version," "$out/VERSION" 2>/dev/null; then
        echo "onnx-deps: writing the ONNX test data (onnx $version) to $out" >&2
        rm -rf "$out"
        "$py" "$root/scripts/onnx_data.py" "$out" >/dev/null 2>&1 ||
            { echo "onnx-deps: could not write the ONNX test data" >&2; return 0; }
    fi
    export TEXPR_ONNX_DATA="$out"
    if ! "$py" -I -c 'import onnxruntime' >/dev/null 2>&1; then
        echo "onnx-deps: installing onnxruntime into $root/.venv" >&2
        "$py" -m pip install -q --disable-pip-version-check 'onnxruntime==1.23.*' ||
            { echo "onnx-deps: could not install onnxruntime" >&2; return 0; }
    fi
    "$py" -I "$root/scripts/onnx_models.py" "$root/target/onnx-models" >/dev/null ||
        { echo "onnx-deps: could not write the models" >&2; return 0; }
    export TEXPR_ONNX_MODELS="$root/target/onnx-models"
    return 0
}

_texpr_onnx_deps
unset -f _texpr_onnx_deps
