"""Facts about the machine that benchmark figures are recorded with, read without importing torch."""

import platform
import subprocess


def cpu_model() -> str:
    """The CPU's model name on Linux (platform.processor() only says x86_64 there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def gpu_models() -> list[str]:
    """The NVIDIA GPUs' names as nvidia-smi lists them; none on a machine without it (train.py then runs on CPU)."""
    try:
        listing = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.strip() for line in listing.stdout.splitlines() if line.strip()] if listing.returncode == 0 else []
