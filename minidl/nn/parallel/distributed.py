"""DistributedDataParallel: one model replica per process, gradients averaged over MPI.

Each rank runs the same model on its own slice of the data. Wrapping broadcasts
rank 0's parameters and buffers, so every replica starts equal; each backward
averages the gradients over the ranks, so every replica takes the same step.

Gradients are reduced in buckets: the parameters, in reverse order of
registration (about the order in which backward produces their gradients), are
grouped into flat buffers of at most ``bucket_cap_mb`` megabytes per dtype. A
post-accumulate hook on each parameter copies its gradient (divided by the world
size) into its bucket's slot; when a bucket's last gradient arrives, one
non-blocking ``Iallreduce`` starts on the whole buffer while backward goes on
with the layers below. When every bucket has started, the ranks wait for them
and the averaged values are copied back into ``.grad``.
"""

import zlib
from contextlib import contextmanager

import numpy as np

from ... import distributed as dist
from ...autograd import is_grad_enabled
from ..module import Module

_PREFIX = "module."


class _Bucket:
    """A flat buffer holding the gradients of some parameters of one dtype, end to end."""

    def __init__(self, parameters, dtype):
        self.parameters = parameters
        self.offsets = []
        total = 0
        for parameter in parameters:
            self.offsets.append(total)
            total += parameter.numpy().size
        self.buffer = np.zeros(total, dtype=dtype)
        self.ready = set()
        self.request = None

    def slot(self, index):
        parameter = self.parameters[index]
        start = self.offsets[index]
        return self.buffer[start : start + parameter.numpy().size].reshape(parameter.shape)


class DistributedDataParallel(Module):
    """Data parallelism over MPI: averages ``module``'s gradients over every rank (torch's DDP).

    ``module`` is the model of one replica; call the wrapper as you would the
    model, then ``loss.backward()``: when backward returns, every parameter's
    ``.grad`` holds the mean of the ranks' gradients. Needs
    ``minidl.distributed.init()`` first.

    - Wrapping broadcasts rank 0's parameters and buffers to every rank, after
      checking that every rank wraps a model with the same parameter shapes.
    - ``broadcast_buffers`` (default True, as torch): before each forward that
      follows a synchronized training forward, rank 0's buffers (BatchNorm's
      running statistics) are copied to every rank. :class:`~minidl.nn.SyncBatchNorm`
      keeps them equal without that.
    - ``bucket_cap_mb``: gradients are reduced in flat buckets of at most this
      size, each started (non-blocking) as soon as its gradients are ready.
    - :meth:`no_sync`: a context in which backward only accumulates local
      gradients (gradient accumulation); the first synchronized backward after it
      averages what was accumulated.
    - ``state_dict()`` is the wrapped module's, **without** torch's ``module.``
      prefix, so a checkpoint of distributed training loads into the bare model
      and the other way round; :meth:`load_state_dict` takes keys with or without
      the prefix. (Parameter names from ``named_parameters`` keep the prefix, as
      torch's do.)

    Every parameter that requires grad must receive a gradient in every
    synchronized backward; otherwise the next forward raises, naming the
    parameters (torch's ``find_unused_parameters`` is not offered).

    >>> import minidl.distributed as dist
    >>> dist.init()  # under mpiexec  # doctest: +SKIP
    >>> model = DistributedDataParallel(minidl.nn.Dense(4, 2))  # doctest: +SKIP
    >>> model(minidl.randn(8, 4)).sum().backward()  # grads now averaged  # doctest: +SKIP
    """

    def __init__(self, module, broadcast_buffers=True, bucket_cap_mb=25.0):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(
                f"DistributedDataParallel: expected a minidl.nn.Module, got {type(module).__name__}"
            )
        if not dist.is_initialized():
            raise RuntimeError(
                "DistributedDataParallel: the process group is not initialized; call "
                "minidl.distributed.init() first (under mpiexec, srun or another MPI launcher)"
            )
        if not bucket_cap_mb > 0:
            raise ValueError(
                f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb!r}"
            )
        self.module = module
        self.broadcast_buffers = bool(broadcast_buffers)
        self.bucket_cap_mb = float(bucket_cap_mb)
        self.require_backward_grad_sync = True
        self._require_forward_param_sync = True
        self._world = dist.get_world_size()
        self._names = {}
        parameters = []
        for name, parameter in module.named_parameters():
            if parameter.requires_grad and id(parameter) not in self._names:
                self._names[id(parameter)] = name
                parameters.append(parameter)
        self._parameters_in_order = parameters
        self._check_replicas_agree(module)
        self._sync_state(module)
        self._buckets = self._make_buckets(parameters)
        self._where = {}
        for bucket_index, bucket in enumerate(self._buckets):
            for index, parameter in enumerate(bucket.parameters):
                self._where[id(parameter)] = (bucket_index, index)
        self._reducing = False  # this backward averages gradients
        self._started = 0  # buckets whose all-reduce has started in this backward
        self._handles = [
            p.register_post_accumulate_grad_hook(self._gradient_ready) for p in parameters
        ]

    # ------------------------------------------------------------------ set-up
    def _check_replicas_agree(self, module):
        shapes = [(name, tuple(p.shape), str(p.dtype)) for name, p in module.named_parameters()]
        buffers = [(name, tuple(b.shape), str(b.dtype)) for name, b in module.named_buffers()]
        text = repr((shapes, buffers)).encode()
        mine = np.array([len(shapes), len(buffers), zlib.crc32(text)], dtype=np.int64)
        every = dist._allgather_rows(mine, "DistributedDataParallel")
        differing = [r for r in range(len(every)) if (every[r] != mine).any()]
        if differing:
            raise dist.DistributedError(
                f"DistributedDataParallel: rank {dist.get_rank()} wraps a model whose "
                "parameters and buffers (names, shapes, dtypes) differ from those of "
                f"rank(s) {differing}; every rank must build the same model"
            )

    def _sync_state(self, module):
        """Broadcast rank 0's parameters and buffers (one flat buffer per dtype)."""
        arrays = [p.numpy() for p in module.parameters()]
        arrays += [b.numpy() for b in module.buffers()]
        _broadcast_arrays(arrays, "DistributedDataParallel")

    def _sync_buffers(self):
        """Copy rank 0's buffers to every rank (what ``broadcast_buffers`` does each forward)."""
        _broadcast_arrays([b.numpy() for b in self.module.buffers()], "DistributedDataParallel")

    def _make_buckets(self, parameters):
        cap = self.bucket_cap_mb * 2**20
        buckets = []
        open_buckets = {}  # dtype -> (parameters, bytes) being filled
        for parameter in reversed(parameters):
            dtype = parameter.numpy().dtype
            members, size = open_buckets.get(dtype, ([], 0))
            nbytes = parameter.numpy().nbytes
            if members and size + nbytes > cap:
                buckets.append(_Bucket(members, dtype))
                members, size = [], 0
            members.append(parameter)
            open_buckets[dtype] = (members, size + nbytes)
        for dtype, (members, _) in open_buckets.items():
            if members:
                buckets.append(_Bucket(members, dtype))
        return buckets

    # ------------------------------------------------------------------ forward
    def forward(self, *inputs, **kwargs):
        if self._reducing and any(bucket.ready for bucket in self._buckets):
            # a backward began averaging but some parameters got no gradient
            self._unfinished_reduction()
        if (
            self._require_forward_param_sync
            and self.broadcast_buffers
            and self._world > 1
            and any(True for _ in self.module.buffers())
        ):
            self._sync_buffers()
        output = self.module(*inputs, **kwargs)
        sync = is_grad_enabled() and self.require_backward_grad_sync
        self._require_forward_param_sync = sync
        self._reducing = sync and self._world > 1
        self._started = 0
        for bucket in self._buckets:
            bucket.ready.clear()
            bucket.request = None
        return output

    def _unfinished_reduction(self):
        missing = [
            self._names[id(bucket.parameters[i])]
            for bucket in self._buckets
            for i in range(len(bucket.parameters))
            if i not in bucket.ready
        ]
        self._reducing = False
        raise RuntimeError(
            "DistributedDataParallel: the previous backward did not produce a gradient for "
            f"every parameter, so their average was not completed: {missing}. Every parameter "
            "that requires grad must take part in the loss of every synchronized step (set "
            "requires_grad=False on parameters the model does not use)."
        )

    # ------------------------------------------------------------------ backward
    def _gradient_ready(self, parameter):
        if not self._reducing:
            return
        bucket_index, index = self._where[id(parameter)]
        bucket = self._buckets[bucket_index]
        if index in bucket.ready:
            raise RuntimeError(
                "DistributedDataParallel: the gradient of parameter "
                f"{self._names[id(parameter)]} arrived twice in one synchronized step (two "
                "backward passes after one forward?); run the extra backward under no_sync()"
            )
        # averaged as torch's default hook does: divided by the world size, then summed
        np.divide(parameter.grad.numpy(), self._world, out=bucket.slot(index))
        bucket.ready.add(index)
        if len(bucket.ready) == len(bucket.parameters):
            bucket.request = dist._allreduce_start(bucket.buffer)
            self._started += 1
            if self._started == len(self._buckets):
                self._finish()
                return
        # give MPI a chance to move the buckets already in flight
        for other in self._buckets:
            if other.request is not None:
                other.request.Test()

    def _finish(self):
        group = dist._group
        for bucket in self._buckets:
            group.wait(bucket.request, "DistributedDataParallel: gradient all-reduce")
        for bucket in self._buckets:
            for index, parameter in enumerate(bucket.parameters):
                parameter.grad.numpy()[...] = bucket.slot(index)
            bucket.request = None
        self._reducing = False

    @contextmanager
    def no_sync(self):
        """Within this context, backward accumulates gradients locally without averaging.

        The forward passes run inside the context decide; the first synchronized
        backward afterwards averages the accumulated gradients (torch's ``no_sync``).

        >>> with ddp.no_sync():  # doctest: +SKIP
        ...     ddp(first_half).sum().backward()
        >>> ddp(second_half).sum().backward()  # averages both halves' gradients  # doctest: +SKIP
        """
        before = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    # ------------------------------------------------------------------ state
    def state_dict(self):
        """The wrapped module's state dict: keys without a ``module.`` prefix.

        >>> sorted(ddp.state_dict())  # for a wrapped Dense  # doctest: +SKIP
        ['bias', 'weight']
        """
        return self.module.state_dict()

    def load_state_dict(self, state, strict=True):
        """Load a state dict saved with or without torch's ``module.`` prefix.

        >>> ddp.load_state_dict(torch_ddp_state)  # keys 'module.weight', ...  # doctest: +SKIP
        """
        if state and all(key.startswith(_PREFIX) for key in state):
            state = {key[len(_PREFIX) :]: value for key, value in state.items()}
        return self.module.load_state_dict(state, strict=strict)

    def extra_repr(self):
        return f"world_size={self._world}, buckets={len(self._buckets)}"


def _broadcast_arrays(arrays, what):
    """Broadcast rank 0's values of ``arrays`` into them in place, one flat buffer per dtype."""
    if dist.get_world_size() == 1:
        return
    by_dtype = {}
    for array in arrays:
        by_dtype.setdefault(array.dtype, []).append(array)
    for dtype, members in by_dtype.items():
        flat = np.concatenate([a.ravel() for a in members]) if members else np.empty(0, dtype)
        if flat.dtype.type not in (np.float32, np.float64, np.int32, np.int64):
            raise TypeError(f"{what}: cannot broadcast state of dtype {dtype}")
        group = dist._group
        group.wait(group.comm.Ibcast(flat, root=0), f"{what}: broadcast from rank 0")
        start = 0
        for array in members:
            array[...] = flat[start : start + array.size].reshape(array.shape)
            start += array.size
