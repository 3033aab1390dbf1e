"""Facts about the machine that benchmark figures are recorded with, read without importing torch."""

import platform


def cpu_model() -> str:
    """The CPU's model name on Linux (platform.processor() only says x86_64 there)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            return next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
