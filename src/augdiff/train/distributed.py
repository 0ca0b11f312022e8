"""Multi-process training: DDP and FSDP2 under ``torchrun``, with the single-process run as the reference.

Launch with ``torchrun --nproc_per_node=N -m augdiff train ... strategy=ddp|fsdp`` (``strategy=auto``, the
default, is DDP when ``WORLD_SIZE > 1`` and one process otherwise). ``batch_size`` stays the *global* batch:
each of the ``W`` processes runs ``grad_accum`` micro-batches of ``batch_size / (W · grad_accum)`` rows.

Global batch decomposition (what makes runs comparable across process counts): the global batch of a step is
cut into ``W · grad_accum`` contiguous micro-batches; rank ``r`` owns micro-batches
``k = r · grad_accum + j`` (``j < grad_accum``), i.e. one contiguous slice of rows, so no example is seen twice.
Micro-batch ``k`` takes its rows, its slice of the step's stratified time grid (drawn once from the shared
seeded generator, so the union over ranks *is* the single-process draw) and its mask generator
``(seed, step, masks, k)``. A run on ``W`` processes with ``grad_accum = A`` therefore computes the same
losses as one process with ``grad_accum = W · A`` (up to float reduction order). Two exceptions: Di-LADD,
whose VQ codebook (vector-quantize-pytorch) all-reduces its statistics per micro-batch, so it matches only to
~1e-5; and padded data (sentence corpora), whose loss is normalised by the non-PAD tokens of each
micro-batch, so rows are weighted per micro-batch, as in MDLM's DDP training.

Only rank 0 writes (metrics, TensorBoard, progress bar, checkpoints); the others wait at a barrier.
Checkpoints hold the *full* (gathered) state in the single-process format, so a run saved with ``W``
processes resumes with any other number, including one.

Dropout: the model is initialised from the shared seed (identical weights on every rank), then each rank
reseeds the global generator from ``(seed, rank)``, so ranks draw distinct dropout masks. With dropout > 0 a
``W``-process run therefore does not reproduce a 1-process run bit for bit (the deterministic parts above
still do). Checkpoints keep every rank's generator state (``rng_ranks``); a resume with the same ``W``
restores each rank's stream exactly, one with another ``W`` starts fresh per-rank streams from
``(seed, rank, step)``.

Ctrl-C under torchrun: torchrun forwards SIGINT to every worker, which may be on different steps. The
ranks agree on stopping (an all-reduce MAX of a one-element flag) at step boundaries before saving: every
step on CPU (gloo), only at logging and checkpoint steps on CUDA (where reading the flag is a host sync), so
there a stop may take up to ``log_every`` steps. torchrun kills workers that have not exited 30 s after
forwarding the signal.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils._pytree import tree_map_only

from augdiff.data import seeded_generator
from augdiff.errors import AugdiffError

__all__ = ["STRATEGIES", "Distributed", "LossModule", "NullLogger", "exit_process"]

STRATEGIES = ("auto", "ddp", "fsdp")
_RANK_RNG = 6  # stream id of the per-rank global (dropout) generator seed


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher setting its variables) started this process."""
    return "RANK" in os.environ and "MASTER_ADDR" in os.environ


def exit_process(code: int) -> None:
    """End this process with ``code``; a torchrun worker ends without interpreter finalization.

    Gloo's worker threads can outlive ``destroy_process_group`` (FSDP's device mesh and DDP's reducer still
    hold the group), and at interpreter shutdown they abort the process ("terminate called without an active
    exception", SIGABRT; about one exit in four with FSDP on 2 CPU processes). Rank 0 has written and closed
    every file by then, so flushing the standard streams and leaving through ``os._exit`` loses nothing.
    """
    if launched_by_torchrun():
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        os._exit(code)
    sys.exit(code)


class LossModule(nn.Module):
    """``forward`` = ``model.loss``: DDP and FSDP2 hook ``forward``, and the training loop calls ``loss``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, x0: Tensor, t: Tensor, generator: torch.Generator | None = None, fixed: Tensor | None = None
    ) -> Any:
        if fixed is None:  # every model takes this call; ``fixed`` only comes with SFT data
            return self.model.loss(x0, t, generator)
        return self.model.loss(x0, t, generator, fixed=fixed)


class NullLogger:
    """What ranks other than 0 log into."""

    def log(self, step: int, scalars: dict[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


@dataclass
class Distributed:
    """The process group of this run (``strategy="single"``: no group, rank 0 of 1)."""

    strategy: str
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    # -- setup ------------------------------------------------------------------------------------------------
    @classmethod
    def from_env(cls, strategy: str, device: torch.device) -> tuple[Distributed, torch.device]:
        """Read torchrun's environment, start the process group and pick this rank's device."""
        if strategy not in STRATEGIES:
            raise AugdiffError(f"strategy={strategy!r} is not known (choose one of: {', '.join(STRATEGIES)})")
        world = _env_int("WORLD_SIZE", 1)
        launched = launched_by_torchrun()
        # Not launched by torchrun: one process, whatever the strategy (so a DDP/FSDP run resumes as one).
        if not launched or (strategy == "auto" and world <= 1):
            return cls("single"), device
        strategy = "ddp" if strategy == "auto" else strategy
        rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
        if device.type == "cuda":
            if local_rank >= torch.cuda.device_count():
                raise AugdiffError(
                    f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} CUDA devices are visible "
                    "(use --nproc_per_node at most the number of GPUs)"
                )
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, device_id=device if device.type == "cuda" else None)
        return cls(strategy, rank, dist.get_world_size(), local_rank), device

    @property
    def active(self) -> bool:
        return self.strategy != "single"

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(
        self,
        model: nn.Module,
        device: torch.device,
        *,
        find_unused: bool = False,
        param_dtype: torch.dtype | None = None,
    ) -> nn.Module:
        """The module the loop calls for the loss: ``LossModule(model)``, under DDP or FSDP2.

        FSDP2 shards every element of every ``nn.ModuleList`` (the transformer blocks) and then the rest; it
        swaps the parameters for DTensors in place, so build the optimizer and EMA *after* this call.
        ``find_unused``: some parameters get no gradient in some steps (LADD stage 1's latent denoiser).
        ``param_dtype`` (bf16 training, under autocast): FSDP2 all-gathers the blocks' parameters in that dtype,
        halving most of the traffic, while the sharded fp32 master weights, the optimizer and the gradient
        reduction stay in fp32.
        """
        wrapper = LossModule(model)
        if self.strategy == "ddp":
            ids = [device.index] if device.type == "cuda" else None
            return nn.parallel.DistributedDataParallel(wrapper, device_ids=ids, find_unused_parameters=find_unused)
        if self.strategy == "fsdp":
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            # The transformer blocks (the bulk of the all-gathers) compute with bf16 parameters; the root (the
            # embeddings, time and latent inputs, heads) stays fp32 and FSDP leaves every input's dtype alone,
            # so the times and the residual stream stay fp32 and autocast picks the matmul dtype, as under DDP.
            blocks = MixedPrecisionPolicy(
                param_dtype=param_dtype,
                reduce_dtype=torch.float32 if param_dtype else None,
                cast_forward_inputs=False,
            )
            # Innermost lists first (pre-order reversed): FSDP2 cannot shard a module inside a sharded one
            # (e.g. the experts of a mixture-of-experts block of an hf: backbone).
            for module in reversed(list(model.modules())):
                if isinstance(module, nn.ModuleList):
                    for block in module:
                        if any(p.requires_grad for p in block.parameters()):
                            fully_shard(block, mp_policy=blocks)
            fully_shard(wrapper)
        return wrapper

    def accumulating(self, module: nn.Module, last: bool) -> contextlib.AbstractContextManager[Any]:
        """Skip the gradient all-reduce on all but the last micro-batch of a step."""
        if last or not self.active:
            return contextlib.nullcontext()
        if self.strategy == "ddp":
            return module.no_sync()  # type: ignore[operator]
        return _fsdp_no_sync(module)

    # -- collectives ------------------------------------------------------------------------------------------
    def mean(self, *tensors: Tensor) -> tuple[Tensor, ...]:
        """Average scalars over ranks (the logged loss of the global batch, once per logging interval)."""
        if not self.active:
            return tensors
        stacked = torch.stack([t.detach().float() for t in tensors])
        dist.all_reduce(stacked, op=dist.ReduceOp.SUM)
        stacked /= self.world_size
        return tuple(stacked.unbind())

    def agree_stop(self, local: bool, device: torch.device, due: bool) -> bool:
        """Whether every rank stops after this step: true if any rank was asked to (a collective when
        ``due`` or on CPU; every rank must call it at the same steps). One process: ``local``, no sync."""
        if not self.active:
            return local
        if device.type == "cuda" and not due:
            return False
        flag = torch.tensor([1 if local else 0], dtype=torch.int32, device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    # -- per-rank global RNG (dropout) ------------------------------------------------------------------------
    def seed_rank_stream(self, *keys: int) -> None:
        """Reseed this rank's global generators from ``(keys, rank)``; a no-op in one process."""
        if self.active:
            torch.manual_seed(seeded_generator(*keys, _RANK_RNG, self.rank).initial_seed())

    def rng_states(self, device: torch.device) -> list[dict[str, Tensor]] | None:
        """Every rank's global generator state, gathered (a collective); ``None`` in one process."""
        if not self.active:
            return None
        mine = {"cpu": torch.get_rng_state()}
        if device.type == "cuda":
            mine["cuda"] = torch.cuda.get_rng_state(device)
        states: list[Any] = [None] * self.world_size
        dist.all_gather_object(states, mine)
        return states

    def restore_rng(self, states: list[dict[str, Tensor]] | None, device: torch.device, seed: int, step: int) -> None:
        """This rank's saved stream when the run had as many ranks, otherwise a fresh one from ``(seed, step)``."""
        if not self.active:
            return
        if not states or len(states) != self.world_size:
            self.seed_rank_stream(seed, step)
            return
        mine = states[self.rank]
        torch.set_rng_state(mine["cpu"])
        if device.type == "cuda" and "cuda" in mine:
            torch.cuda.set_rng_state(mine["cuda"], device)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def shutdown(self) -> None:
        if self.active and dist.is_initialized():
            dist.barrier()  # no rank tears its connections down while another still uses them
            dist.destroy_process_group()

    # -- full state (gathered for rank 0's checkpoint; scattered back on load) ---------------------------------
    def full_tensors(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """DTensor shards → full CPU tensors on rank 0 (a collective under FSDP: every rank must call it).
        The other ranks get ``{}``: gathered one tensor at a time, none of them holds the whole state."""
        if self.strategy != "fsdp":
            return state
        from torch.distributed.tensor import DTensor

        out = {}
        for k, v in state.items():
            full = (v.full_tensor() if isinstance(v, DTensor) else v).detach()
            if self.is_main:
                out[k] = full.cpu()
        return out

    def model_state(self, model: nn.Module) -> dict[str, Tensor]:
        if self.strategy != "fsdp":
            return model.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))

    @property
    def reads_full_state(self) -> bool:
        """Whether this rank reads a checkpoint's full tensors on resume (under FSDP only rank 0 does)."""
        return self.strategy != "fsdp" or self.is_main

    def first_problem(self, problem: str | None) -> str | None:
        """Rank 0's verdict on a checkpoint, given to every rank under FSDP (a collective), so that all raise
        together instead of the others waiting in a broadcast that never comes."""
        if self.strategy != "fsdp":
            return problem
        box = [problem]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def load_model_state(self, model: nn.Module, state: dict[str, Tensor]) -> None:
        """The full ``state`` into ``model``; under FSDP it is rank 0's (the others pass ``{}``), broadcast."""
        if self.strategy != "fsdp":
            model.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))

    def load_into(self, shadow: dict[str, Tensor], full: dict[str, Tensor]) -> dict[str, Tensor]:
        """``full`` as is (copied into ``shadow`` by its owner), or under FSDP scattered one tensor at a time
        from rank 0 (the only rank that holds ``full``) into tensors sharded like ``shadow``'s."""
        if self.strategy != "fsdp":
            return full
        from torch.distributed.tensor import DTensor, distribute_tensor

        out = {}
        for k, ref in shadow.items():
            if self.is_main:
                src = full[k].to(ref.device, ref.dtype)
            else:
                src = torch.empty(ref.shape, dtype=ref.dtype, device=ref.device)
            if isinstance(ref, DTensor):
                out[k] = distribute_tensor(src, ref.device_mesh, ref.placements, src_data_rank=0)
            else:
                dist.broadcast(src, src=0)
                out[k] = src
        return out

    def optimizer_state(self, wrapped: nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """``optimizer.state_dict()`` in the single-process layout (parameters numbered in order)."""
        if self.strategy != "fsdp":
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        osd = get_optimizer_state_dict(
            wrapped, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=True)
        )
        if not osd:  # full_state_dict + cpu_offload: only rank 0 receives the state
            return {}
        index = {name: i for i, name in enumerate(_param_names(wrapped))}
        return {
            "state": {index[k]: v for k, v in osd["state"].items()},
            "param_groups": [{**g, "params": [index[n] for n in g["params"]]} for g in osd["param_groups"]],
        }

    def load_optimizer_state(self, wrapped: nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
        if self.strategy != "fsdp":
            # Own copies: the checkpoint's tensors may be memory-mapped from a file a later save prunes.
            optimizer.load_state_dict(tree_map_only(Tensor, torch.clone, state))
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        names = _param_names(wrapped)
        osd = {}  # rank 0 broadcasts: the others never touch their (memory-mapped) copy
        if self.is_main:
            osd = {
                "state": {names[int(i)]: v for i, v in state["state"].items()},
                "param_groups": [{**g, "params": [names[int(i)] for i in g["params"]]} for g in state["param_groups"]],
            }
        # strict=False: parameters that never had a gradient (LADD stage 1's latent stream) have no saved state;
        # the loader gives them a fresh one, which is dropped again so that they stay as they were.
        options = StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False)
        set_optimizer_state_dict(wrapped, optimizer, osd, options=options)
        saved = {int(i) for i in state["state"]}  # the keys only: cheap on a memory-mapped copy
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for i, param in enumerate(params):
            if i not in saved:
                optimizer.state.pop(param, None)

    def scalar(self, value: Tensor) -> Tensor:
        """A plain tensor from a (possibly DTensor) reduction result, e.g. the gradient norm under FSDP."""
        full_tensor = getattr(value, "full_tensor", None)
        return full_tensor() if full_tensor is not None else value


def _param_names(wrapped: nn.Module) -> list[str]:
    """Names of the parameters in ``parameters()`` order, as the distributed state-dict API spells them
    (FSDP2 keeps the module's own names)."""
    return [name for name, _ in wrapped.named_parameters()]


@contextlib.contextmanager
def _fsdp_no_sync(module: nn.Module) -> Iterator[None]:
    module.set_requires_gradient_sync(False)  # type: ignore[operator]
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)  # type: ignore[operator]
