"""Data-parallel training in several processes: `protege train CONFIG --processes N`, `torchrun` or
`accelerate launch` (all three set RANK / WORLD_SIZE / MASTER_ADDR for each process).

    rank, world = process_group()          # (0, 1) in a plain process; joins the group under a launcher
    share = indices[rank::world]           # each process takes its share of the global batch
    sum_gradients(params)                  # after backward: every process then holds the same gradients

Every process holds the whole student and the same LoRA start (one seed), takes its share of each global batch,
and weights its loss by its share of the positions the loss averages over (the batch's answer tokens, or
on-policy KD's sampled ones: train/loop.py AVERAGED_OVER; KD across tokenizers divides its two means by their
counts over every process instead: SHARE_OF_MEAN), so that summing the gradients over processes
gives the gradient of the one-process loss over the whole batch. Each then steps identically. Only rank 0 writes
(log, checkpoints, the adapter, the stage's manifest); every rank resumes from rank 0's checkpoint. CPU processes
talk over gloo, GPUs over NCCL, each process on its own GPU (LOCAL_RANK).
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """This process was started by a launcher with other processes (torchrun, accelerate launch)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def process_group() -> tuple[int, int]:
    """(rank, world size), joining the launcher's process group on first call."""
    if not launched():
        return 0, 1
    if not dist.is_initialized():
        from protege.models.device import resolve_device

        device = resolve_device()  # the device setting in force; under a launcher, the GPU of this LOCAL_RANK
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return dist.get_rank(), dist.get_world_size()


def reduce_device() -> str:
    """Where a collective's tensors must be: NCCL reduces GPU tensors only (this process's GPU, set in
    process_group), gloo CPU ones."""
    return "cuda" if dist.get_backend() == "nccl" else "cpu"


def total(value: float | int) -> float:
    """The sum of `value` over every process (itself in a single process)."""
    if not dist.is_initialized():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=reduce_device())
    dist.all_reduce(t)
    return float(t.item())


def sum_gradients(params) -> None:
    """Sum each parameter's gradient over the processes, in one flat buffer (LoRA's are small)."""
    if not dist.is_initialized():
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset: offset + n].view_as(g).clone()
        offset += n


def from_main(value):
    """Rank 0's `value` on every process (itself in a single process): a decision every process must take alike,
    such as a compute budget's stop, read off one clock."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def leave_process_group() -> None:
    """Leave the group together once the work is done, so that no process exits while another still talks to it.
    Without it the group was torn down at interpreter exit; one process of a 2-process test was once aborted
    (SIGABRT) after training had finished, not reproduced in 8 runs of the file since, so this is a tidy exit,
    not a measured fix."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
