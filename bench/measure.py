"""Peak-memory measurement shared by the benchmarks: one fresh child process per measurement, so peaks never mix."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path


def start_peak(device: str) -> int:
    """Reset the peak and return what is held now (CUDA: allocator bytes; CPU: resident bytes, Linux)."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    Path("/proc/self/clear_refs").write_text("5")  # Linux: the peak resident size becomes the current one
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_since(device: str, start: int) -> int:
    """Bytes of peak use above `start`."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - start
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - start


def run_child(script: str, arguments: list[str]) -> dict:
    """Run `script --child ARGUMENTS` in a new Python and return the JSON it prints last."""
    output = subprocess.run([sys.executable, script, "--child", *arguments], capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])
