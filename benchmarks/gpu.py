"""GPU check and training throughput: one prepared run of under 5 minutes.

1. Correctness: RRN forward and backward on the accelerator equal the CPU's (fp32, TF32 off)
   within tolerance: logits and every parameter gradient.
2. Speed: training steps (forward, backward, Adam) of the RRN and of the plain torchvision
   ResNet of the same depth (ResNet-50 by default) on every frame at 224 px with AMP (bf16) and channels_last, as a table of frames/s, clips/s and
   peak memory, headed by the device name.

    python benchmarks/gpu.py                 # on a CUDA machine: the full run
    python benchmarks/gpu.py --quick         # anywhere: tiny sizes on CPU (what the tests run)

Without CUDA it compares CPU against CPU with channels_last (another kernel path) and
measures a small configuration, so the script stays tested until a GPU is lent.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time

import torch
import torch.nn.functional as F
import torchvision

from rrn.model import build_model


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def forward_backward(model, clip, labels):
    model.zero_grad(set_to_none=True)
    logits = model(clip)  # (B, K)
    F.cross_entropy(logits.float(), labels).backward()
    grads = {
        n: p.grad.detach().float().cpu() for n, p in model.named_parameters() if p.grad is not None
    }
    return logits.detach().float().cpu(), grads


def check_equal(args, device: torch.device) -> bool:
    """Accelerator vs CPU (or CPU channels_last vs CPU): logits and gradients agree.

    Gradients are compared in eval mode (the backward pass is the same code; see below).
    """
    torch.manual_seed(0)
    ref = build_model(args.arch, num_classes=args.classes, skip_blocks=args.skip.split(","))
    other = build_model(args.arch, num_classes=args.classes, skip_blocks=args.skip.split(","))
    other.load_state_dict(ref.state_dict())
    # BatchNorm on running statistics: with batch statistics over a handful of values at
    # layer4 the comparison measures the conditioning of a random network, not the kernels.
    ref.eval()
    other.eval()
    ctx = ref.temporal_context
    clip = torch.randn(
        args.check_batch, ctx, 3, args.check_size, args.check_size
    )  # (B, T, 3, H, W)
    labels = torch.randint(0, args.classes, (args.check_batch,))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        label = "cuda vs cpu"
    else:
        label = "cpu channels_last vs cpu"
    other.to(device, memory_format=torch.channels_last)
    ref_logits, ref_grads = forward_backward(ref, clip, labels)
    logits, grads = forward_backward(other, clip.to(device), labels.to(device))
    d_logits = (logits - ref_logits).abs().max().item() / max(ref_logits.abs().max().item(), 1e-12)
    d_grads = max(
        (grads[n] - g).abs().max().item() / max(g.abs().max().item(), 1e-12)
        for n, g in ref_grads.items()
    )
    ok = d_logits < args.tol and d_grads < args.tol and ref_grads.keys() == grads.keys()
    print(
        f"check ({label}, fp32, {args.arch} T={ctx} {args.check_size}px, batch {args.check_batch}): "
        f"logits max |diff| {d_logits:.2e}, gradients max |diff| {d_grads:.2e} "
        f"(relative to the largest value; tol {args.tol:g}) over {len(ref_grads)} tensors: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return ok


class Frames(torch.nn.Module):
    """Plain ResNet-50 on the clip's frames: (B, T, 3, H, W) -> (B*T, K)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, clip):
        return self.net(clip.flatten(0, 1))  # (B, T, 3, H, W) -> (B*T, 3, H, W)


def throughput(name, model, clip_shape, device, amp, channels_last, steps, warmup, classes):
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    clip = torch.randn(clip_shape, device=device)  # (B, T, 3, H, W)
    b, t = clip_shape[:2]
    per_frame = isinstance(model, Frames)
    labels = torch.randint(0, classes, (b * t if per_frame else b,), device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    dtype = torch.bfloat16 if amp else torch.float32

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            logits = model(clip)
        F.cross_entropy(logits.float(), labels).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = time.perf_counter() - t0
    peak = (
        torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    )
    return {
        "model": name,
        "frames/step": b * t,
        "outputs/step": len(labels),
        "frames/s": b * t * steps / dt,
        "clips/s": b * steps / dt,
        "ms/step": 1000 * dt / steps,
        "peak GiB": peak,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes (CPU smoke run)")
    p.add_argument("--device", default="auto")
    p.add_argument("--arch", default="resnet50")
    p.add_argument("--skip", default="block4", help="temporal skips of the RRN (default: block4)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--batch", type=int, default=16, help="clips per step")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--classes", type=int, default=101)
    p.add_argument("--check-size", type=int, default=112)
    p.add_argument("--check-batch", type=int, default=4)
    p.add_argument("--tol", type=float, default=1e-3)
    args = p.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if args.quick or device.type != "cuda":
        if not args.quick:
            print("no CUDA device: running the small CPU configuration (--quick)")
        args.size, args.batch, args.steps, args.warmup = 64, 2, 2, 1
        args.arch = "resnet18"  # smoke run: both rows and the check on the smallest depth
        args.check_size, args.check_batch, args.classes = 64, 2, 5
    amp = device.type == "cuda"
    channels_last = device.type == "cuda"

    print(
        f"device: {device_name(device)} | torch {torch.__version__} | "
        f"amp {'bf16' if amp else 'off'} | channels_last {'on' if channels_last else 'off'}"
    )
    t0 = time.perf_counter()
    ok = check_equal(args, device)

    torch.manual_seed(0)
    rrn = build_model(args.arch, num_classes=args.classes, skip_blocks=args.skip.split(","))
    ctx = rrn.temporal_context
    shape = (args.batch, ctx, 3, args.size, args.size)
    rows = [
        throughput(
            f"RRN {args.arch} (skips {args.skip}, T={ctx})",
            rrn,
            shape,
            device,
            amp,
            channels_last,
            args.steps,
            args.warmup,
            args.classes,
        ),
        throughput(
            f"torchvision {args.arch} (per frame)",
            Frames(torchvision.models.get_model(args.arch, num_classes=args.classes)),
            shape,
            device,
            amp,
            channels_last,
            args.steps,
            args.warmup,
            args.classes,
        ),
    ]
    print(
        f"\ntraining throughput at {args.size}px, {args.batch} clips x T={ctx} frames per step "
        f"(forward + backward + Adam), {args.steps} timed steps:"
    )
    head = ["model", "frames/step", "outputs/step", "frames/s", "clips/s", "ms/step", "peak GiB"]
    print("| " + " | ".join(head) + " |")
    print("|" + "|".join("---" for _ in head) + "|")
    for r in rows:
        cells = [
            r[h]
            if isinstance(r[h], str | int)
            else f"{r[h]:.1f}"
            if h != "peak GiB"
            else f"{r[h]:.2f}"
            for h in head
        ]
        print("| " + " | ".join(map(str, cells)) + " |")
    print(f"\ntotal {time.perf_counter() - t0:.1f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
