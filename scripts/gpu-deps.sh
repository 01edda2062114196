# shellcheck shell=bash
# What the GPU tests need on a machine without a GPU, installed when missing
# and exported for the test process. Sourced by scripts/test.sh (it must not
# `exit`); safe to source again: a second run only checks and exports.
#
# - OpenCL: PoCL (an OpenCL implementation on the CPU) and the ICD loader,
#   from Debian's packages. The OpenCL tests really run the kernels on it.
# - CUDA: NVRTC, the CUDA runtime headers (`cuda_fp16.h`) and `ptxas`, from
#   PyPI into `.venv/` at the repository root (gitignored). The CUDA tests
#   compile every generated kernel to a CUBIN; a GPU is needed only to run.
#
# Exports:
#   LD_LIBRARY_PATH       + the NVRTC library folder (cudarc finds libnvrtc
#                         through the dynamic loader only)
#   TEXPR_CUDA_INCLUDE    the folder holding cuda_fp16.h / cuda_bf16.h
#   TEXPR_PTXAS           the ptxas binary (register and shared memory report)
#
# Nothing here fails the sourcing script: a missing piece is reported, and
# the tests that need it skip (or, under CI=true, fail and say why).

_texpr_gpu_deps() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1; then sudo="sudo"; fi
    fi

    # ---- OpenCL: PoCL + ICD loader ------------------------------------------------
    local opencl_lib
    opencl_lib="$(ldconfig -p 2>/dev/null | grep 'libOpenCL\.so' || true)"
    if ! ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1 || [ -z "$opencl_lib" ]; then
        if command -v apt-get >/dev/null 2>&1; then
            echo "gpu-deps: installing PoCL (OpenCL on the CPU)" >&2
            if ! { $sudo apt-get update -qq &&
                DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
                    pocl-opencl-icd ocl-icd-libopencl1 clinfo >/dev/null; }; then
                echo "gpu-deps: could not install PoCL; OpenCL tests will not find a platform" >&2
            fi
        else
            echo "gpu-deps: no apt-get; install an OpenCL ICD (e.g. PoCL) for the OpenCL tests" >&2
        fi
    fi

    # ---- CUDA: NVRTC, headers and ptxas from PyPI, in .venv -------------------------
    local venv="$root/.venv"
    # shellcheck source=/dev/null
    source "$root/scripts/venv.sh"
    _texpr_venv "$root" || true
    if [ -x "$venv/bin/python" ]; then
        local site
        site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
        if ! ls "$site"/nvidia/cuda_nvrtc/lib/libnvrtc.so* >/dev/null 2>&1 ||
            [ ! -e "$site/nvidia/cuda_runtime/include/cuda_fp16.h" ] ||
            [ ! -x "$site/nvidia/cuda_nvcc/bin/ptxas" ]; then
            echo "gpu-deps: installing NVRTC, CUDA headers and ptxas into $venv" >&2
            "$venv/bin/python" -m pip install -q --disable-pip-version-check \
                'nvidia-cuda-nvrtc-cu12==12.9.*' 'nvidia-cuda-runtime-cu12==12.9.*' 'nvidia-cuda-nvcc-cu12==12.9.*' ||
                echo "gpu-deps: could not install NVRTC; CUDA compile tests will not find it" >&2
        fi
        local nvrtc_lib="$site/nvidia/cuda_nvrtc/lib"
        if [ -d "$nvrtc_lib" ]; then
            # The wheel ships libnvrtc.so.12 only; loaders that ask for the
            # unversioned name find it through this link.
            if [ ! -e "$nvrtc_lib/libnvrtc.so" ]; then
                local so
                so="$(ls "$nvrtc_lib"/libnvrtc.so.* 2>/dev/null | head -n1 || true)"
                [ -n "$so" ] && ln -sf "$(basename "$so")" "$nvrtc_lib/libnvrtc.so"
            fi
            case ":${LD_LIBRARY_PATH:-}:" in
                *":$nvrtc_lib:"*) ;;
                *) export LD_LIBRARY_PATH="$nvrtc_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ;;
            esac
        fi
        [ -d "$site/nvidia/cuda_runtime/include" ] && export TEXPR_CUDA_INCLUDE="$site/nvidia/cuda_runtime/include"
        [ -x "$site/nvidia/cuda_nvcc/bin/ptxas" ] && export TEXPR_PTXAS="$site/nvidia/cuda_nvcc/bin/ptxas"
    fi
    return 0
}

_texpr_gpu_deps
unset -f _texpr_gpu_deps
