"""cuBLAS (through PyTorch) on the same f32 matrix product as
`backends/examples/cuda_matmul.rs`, for docs/PERFORMANCE.md.

    python3 benches/peers_cuda.py [N]

Prints the kernel time (CUDA events, median of 20 after warm-up) with
TF32 off (full f32, what texpr computes) and on, and the time of a call
from host memory (copy in, product, copy out), which is what one texpr
call does.
"""
import sys
import time

import torch


def kernel_ms(f, reps=20):
    for _ in range(3):
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        f()
        e.record()
        e.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 4096
    flop = 2.0 * n * n * n
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}, {n}x{n}x{n} f32")
    a_h = torch.rand(n, n) - 0.5
    b_h = torch.rand(n, n) - 0.5
    a, b = a_h.cuda(), b_h.cuda()
    for tf32 in (False, True):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        ms = kernel_ms(lambda: torch.mm(a, b))
        print(f"torch.mm kernel (tf32={tf32}): {ms:.3f} ms = {flop / ms / 1e9:.2f} TFLOP/s")
    torch.backends.cuda.matmul.allow_tf32 = False
    best = float("inf")
    for _ in range(6):
        t = time.perf_counter()
        c = torch.mm(a_h.cuda(), b_h.cuda()).cpu()
        best = min(best, time.perf_counter() - t)
    print(f"torch.mm call from host memory (tf32=False): best {best * 1e3:.3f} ms = {flop / best / 1e12:.2f} TFLOP/s")
    del c


if __name__ == "__main__":
    main()
