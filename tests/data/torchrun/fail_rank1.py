"""A 2-process torchrun job in which rank 1 raises under @record (chained cause)."""

import os
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record


def load_shard(rank):
    try:
        {}["shard-%d" % rank]
    except KeyError as exc:
        raise RuntimeError(f"rank {rank}: CUDA error: an illegal memory access was encountered") from exc


@record
def main():
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    print(f"rank {rank} started", flush=True)
    if rank == 1:
        load_shard(rank)
    dist.barrier()


if __name__ == "__main__":
    main()
