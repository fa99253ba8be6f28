"""One spelling for a GPU id, whatever the source wrote (pure).

The simulator, the reporter's examples and the log parsers say ``GPU5``; dcgm-exporter's ``gpu``
label says ``"5"``, its ``device`` label ``nvidia5``; nvidia-smi prints ``GPU 5``. The analysis
compares GPU ids as strings (a fault localised to one GPU of one host), so every source stores
the index as ``GPU<n>``. A UUID (``GPU-1f02…``) or a MIG id names one device by itself and is kept
as given. (The engine helper may add ``incidentbot.analysis.names.normalise_gpu``; this one is the
ingest side's and can be replaced by it then.)
"""

from __future__ import annotations

import re

__all__ = ["normalise_gpu"]

# "5", "GPU5", "gpu 5", "GPU#5", "nvidia5", "/dev/nvidia5", "cuda:5" — an index in any of these.
_INDEX = re.compile(r"(?:/dev/)?(?:gpu|nvidia|cuda)?\s*[#:]?\s*(\d{1,4})", re.I)


def normalise_gpu(value: object) -> str | None:
    """``"3"``, ``3``, ``"nvidia3"``, ``"GPU 3"`` → ``"GPU3"``; a UUID or anything else as given
    (stripped); empty → None."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text:
        return None
    m = _INDEX.fullmatch(text)
    if m:
        return f"GPU{int(m.group(1))}"
    return text
