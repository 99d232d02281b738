"""Data-parallel runs under ``torchrun``: the process group, sharded evaluation and gradient all-reduce.

``torchrun --nproc_per_node N -m harness run SUITE`` (or ``-m xmbench``) starts N processes with ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK`` set; :func:`init` joins them into one process group (NCCL on CUDA, gloo on CPU)
and every run of the suite is then trained by all N together:

* **Training.** Each optimiser step takes one global batch from the run's seeded permutation (the same one a single
  process draws: :class:`harness.train.loop.DataOrder`); rank ``r`` takes its examples ``r, r + N, r + 2N, ...``
  (``DistributedSampler``'s interleaving, without its padding: a padded example would be counted twice in the
  gradient and in the scores). Each rank's micro-batch losses are weighted by their share of the global batch and
  the gradients are summed over ranks (:func:`all_reduce_grads`), so the step's gradient is the mean over the
  global batch, exactly as in one process, up to float summation order.

  ``DistributedDataParallel`` itself is not used: it hooks ``forward`` only, and tasks call ``encode_image``,
  ``encode_text`` and ``fuse``. The all-reduce runs after the backward of the step's last micro-batch, in
  flattened buckets (what DDP does, without overlapping communication with the backward pass).
* **State.** Parameters and buffers start as rank 0's (:func:`broadcast_module`), and buffers (BatchNorm running
  statistics) are broadcast from rank 0 after every step, as DDP's ``broadcast_buffers`` does. BatchNorm batch
  statistics and augmentation draws are per rank, so runs of models with BatchNorm, or with augmentation, match the
  single-process run in distribution, not number for number.
* **Evaluation.** Every forward pass of an evaluation goes through :func:`map_batches`: rank ``r`` computes a
  contiguous 1/N of the examples (the first ``n mod N`` ranks one more), the outputs are gathered in order, and
  every rank computes the metrics from all of them, so each example is scored exactly once whether or not the
  split divides by N.
* **Writing.** Only rank 0 claims runs and writes run folders, checkpoints, reports and logs; its decisions (which
  runs to do) are broadcast (:func:`broadcast_object`) so that every rank runs the same runs.

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) every function here is the single-process identity.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1


_WORLD = World()


def world() -> World:
    """The process group this process belongs to (a world of one without torchrun)."""
    return _WORLD


def env_world_size() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        return 1


def init(device_type: str) -> World:
    """Join the ``torchrun`` process group once per process (NCCL on CUDA, gloo otherwise); a no-op without one."""
    global _WORLD
    from harness.errors import UserError

    size = env_world_size()
    if size <= 1 or _WORLD.active:
        return _WORLD
    import torch.distributed as dist

    try:
        rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    except (KeyError, ValueError) as exc:
        raise UserError(
            f"WORLD_SIZE={size} but RANK/LOCAL_RANK are not set; start data-parallel runs with torchrun "
            "(docs/scale-out.md)"
        ) from exc
    backend = "nccl" if device_type == "cuda" else "gloo"
    if device_type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(
                f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} CUDA device(s); lower "
                "torchrun --nproc_per_node"
            )
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    _WORLD = World(rank=rank, size=size, local_rank=local_rank, backend=backend)
    return _WORLD


def shutdown() -> None:
    global _WORLD
    if _WORLD.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    _WORLD = World()


def device(device: torch.device) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` under torchrun on CUDA, else ``device``."""
    if _WORLD.active and device.type == "cuda":
        return torch.device("cuda", _WORLD.local_rank)
    return device


def barrier() -> None:
    if _WORLD.active:
        import torch.distributed as dist

        dist.barrier()


@contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (building on-disk caches), then the others (reading them)."""
    if _WORLD.active and not _WORLD.main:
        barrier()
    try:
        yield
    finally:
        if _WORLD.active and _WORLD.main:
            barrier()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not _WORLD.active:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_gather_object(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not _WORLD.active:
        return [obj]
    import torch.distributed as dist

    out: list[Any] = [None] * _WORLD.size
    dist.all_gather_object(out, obj)
    return out


def shard_range(n: int) -> tuple[int, int]:
    """This rank's contiguous slice ``[start, stop)`` of ``n`` examples: sizes differ by at most one."""
    size, rank = _WORLD.size, _WORLD.rank
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def rank_slice(idx: torch.Tensor) -> torch.Tensor:
    """This rank's examples of a global batch: positions ``rank, rank + N, ...`` (DistributedSampler's rule)."""
    if not _WORLD.active:
        return idx
    return idx[_WORLD.rank :: _WORLD.size]


def _comm_device(t: torch.Tensor) -> torch.device:
    return torch.device("cuda", _WORLD.local_rank) if _WORLD.backend == "nccl" else torch.device("cpu")


def gather_rows(t: torch.Tensor | None, sizes: list[int]) -> torch.Tensor | None:
    """Concatenate every rank's ``t`` in rank order; ``sizes[r]`` is the number of rows rank ``r`` sends (the first
    ``sizes[rank]`` rows of ``t``; other dims equal on all ranks)."""
    if not _WORLD.active or t is None:
        return t
    import torch.distributed as dist

    rows = sizes[_WORLD.rank]
    home = t.device
    buf = t.new_zeros((max(sizes), *t.shape[1:]), device=_comm_device(t))
    if rows:
        buf[:rows] = t[:rows].to(buf.device)
    parts = [torch.empty_like(buf) for _ in range(_WORLD.size)]
    dist.all_gather(parts, buf.contiguous())
    return torch.cat([p[:k] for p, k in zip(parts, sizes)]).to(home)


def local_batches(n: int, batch_size: int) -> Iterator[torch.Tensor]:
    """Index batches of this rank's contiguous share of ``n`` examples (all of them without torchrun)."""
    start, stop = shard_range(n)
    for s in range(start, stop, batch_size):
        yield torch.arange(s, min(stop, s + batch_size))


def map_batches(n: int, batch_size: int, fn: Callable[[torch.Tensor], Any]) -> Any:
    """``fn`` over the index batches of ``n`` examples, outputs concatenated along the first dimension, in order.

    Under torchrun each rank runs ``fn`` on its contiguous share (:func:`shard_range`) and the outputs of all ranks
    are gathered, so every rank ends with the outputs for all ``n`` examples, each computed once. ``fn`` returns a
    tensor, a tuple/list of tensors (or None), or a dataclass of tensors (``Encoded``). A rank with no examples
    (``n`` smaller than the world) runs ``fn`` on the first example to learn the shapes and sends none of it."""
    outs = [fn(idx) for idx in local_batches(n, batch_size)]
    if not _WORLD.active:
        return _concat(outs)
    start, stop = shard_range(n)
    if not outs:  # this rank has no example: learn the output's shapes from one, send none of its rows
        outs = [fn(torch.arange(0, min(1, n)))]
    sizes = all_gather_object(stop - start)  # once for every tensor of the output
    return _apply(_concat(outs), lambda t: gather_rows(t, sizes))


def _concat(outs: list[Any]) -> Any:
    first = outs[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(outs)
    if first is None:
        return None
    if isinstance(first, (tuple, list)):
        return type(first)(_concat([o[i] for o in outs]) for i in range(len(first)))
    if hasattr(first, "__dataclass_fields__"):
        import dataclasses

        return type(first)(**{f.name: _concat([getattr(o, f.name) for o in outs]) for f in dataclasses.fields(first)})
    raise TypeError(f"map_batches: cannot concatenate outputs of type {type(first).__name__}")


def _apply(obj: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if obj is None:
        return None
    if isinstance(obj, (tuple, list)):
        return type(obj)(_apply(o, fn) for o in obj)
    import dataclasses

    return type(obj)(**{f.name: _apply(getattr(obj, f.name), fn) for f in dataclasses.fields(obj)})


def gather_list(items: list[Any]) -> list[Any]:
    """Every rank's list, concatenated in rank order (JSON-like objects: detections)."""
    if not _WORLD.active:
        return items
    return [x for part in all_gather_object(items) for x in part]


BUCKET_BYTES = 25 * 2**20  # DDP's default bucket size


def all_reduce_grads(params: list[torch.nn.Parameter]) -> None:
    """Sum the gradients of ``params`` over the ranks, in flattened buckets of about 25 MiB.

    A parameter with a gradient on some rank but not on this one (unused by its micro-batches) takes part with
    zeros; one with no gradient on any rank (frozen, or unused by the whole step) keeps ``None``, so the optimiser
    skips it exactly as in one process."""
    if not _WORLD.active:
        return
    import torch.distributed as dist

    params = [p for p in params if p.requires_grad]
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.uint8, device=_comm_device(params[0]))
    dist.all_reduce(has, op=dist.ReduceOp.MAX)
    bucket: list[torch.nn.Parameter] = []
    size = 0
    for p, used in zip(params, has.tolist()):
        if not used:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        bucket.append(p)
        size += p.numel() * p.element_size()
        if size >= BUCKET_BYTES:
            _reduce_bucket(bucket, dist)
            bucket, size = [], 0
    if bucket:
        _reduce_bucket(bucket, dist)


def _reduce_bucket(bucket: list[torch.nn.Parameter], dist: Any) -> None:
    by_dtype: dict[torch.dtype, list[torch.nn.Parameter]] = {}
    for p in bucket:
        by_dtype.setdefault(p.grad.dtype, []).append(p)
    for group in by_dtype.values():
        flat = torch.cat([p.grad.reshape(-1) for p in group])
        home = flat.device
        flat = flat.to(_comm_device(flat))
        dist.all_reduce(flat)
        flat = flat.to(home)
        offset = 0
        for p in group:
            n = p.grad.numel()
            p.grad.copy_(flat[offset : offset + n].view_as(p.grad))
            offset += n


def broadcast_module(module: torch.nn.Module, buffers_only: bool = False) -> None:
    """Rank 0's parameters (unless ``buffers_only``) and buffers on every rank."""
    if not _WORLD.active:
        return
    import torch.distributed as dist

    tensors = [] if buffers_only else [p.data for p in module.parameters()]
    tensors += [b for b in module.buffers() if b.numel()]
    for t in tensors:
        dist.broadcast(t, src=0)
