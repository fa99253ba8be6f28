"""The categories a failure text is put in, one vocabulary for the whole package: the parsers
(``signatures/``) give each signature one and runbooks name the ones they serve
(``categories:``). A leaf module, so ``runbooks/`` stays importable without the parsers."""

from __future__ import annotations

__all__ = ["CATEGORIES", "CATEGORY_DOCS"]

CATEGORY_DOCS: dict[str, str] = {
    "nccl_watchdog_timeout": "NCCL/torch.distributed watchdog timed out a collective or got stuck",
    "nccl_error": "NCCL returned an error code",
    "nccl_warn": "NCCL WARN debug lines with no stronger symptom",
    "infiniband_rdma": "InfiniBand/RDMA completion errors, retries exceeded, mlx5 events",
    "cuda_runtime": "CUDA runtime error (illegal address, assert, ECC, NVLink, cuBLAS)",
    "cuda_oom": "CUDA out of memory (all wordings)",
    "xid": "NVIDIA Xid / SXid driver error",
    "gpu_lost": "GPU unreachable or lost",
    "gpu_health_check": "GPU health check / diagnostic failure",
    "loss_instability": "NaN, overflow or spike in loss / grad norm",
    "hang": "training stopped making progress",
    "dataloader": "DataLoader worker death",
    "checkpoint_io": "checkpoint save/load I/O failure",
    "launcher_elastic": "torchrun/elastic/mp.spawn failure summary",
    "rendezvous_store": "rendezvous / TCPStore / gloo timeout",
    "slurm": "SLURM kill or cancellation",
    "kubernetes": "Kubernetes container termination or eviction",
    "host_hardware": "host hardware error (disk, PCIe, memory, MCE)",
    "host_oom": "host OOM killer",
    "python_exception": "Python traceback no specific parser claims",
    "alert": "Prometheus alert text",
    "other": "generic template of unknown text",
}
CATEGORIES: tuple[str, ...] = tuple(CATEGORY_DOCS)
