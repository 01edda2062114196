# shellcheck shell=bash
# The project's Python virtual environment, `.venv/` at the repository root
# (gitignored). Sourced by gpu-deps.sh and onnx-deps.sh; defines
# `_texpr_venv ROOT`, which creates the environment when it is missing
# (installing Debian's python3-venv if `-m venv` needs it) and returns
# non-zero when it cannot.

_texpr_venv() {
    local venv="$1/.venv"
    [ -x "$venv/bin/python" ] && return 0
    local sudo=""
    if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
    echo "venv: creating $venv" >&2
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1; then
            { $sudo apt-get update -qq &&
                DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
                    python3-venv python3-pip >/dev/null; } || true
        fi
        rm -rf "$venv"
        python3 -m venv "$venv" >/dev/null 2>&1 || { echo "venv: could not create $venv" >&2; return 1; }
    fi
    return 0
}
