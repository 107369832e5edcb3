"""A two-rank gloo job whose main is wrapped in torchrun's @record: rank 1 raises, torchrun writes
error files.
"""

import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record


@record
def main() -> None:
    dist.init_process_group("gloo")
    if dist.get_rank() == 1:
        raise KeyError("label_ids")
    dist.barrier()


main()
