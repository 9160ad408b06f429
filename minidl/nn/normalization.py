"""Normalization layers beyond BatchNorm: LayerNorm, GroupNorm, InstanceNorm1d/2d, BatchNorm3d,
SyncBatchNorm.

Each has PyTorch's arguments, defaults, parameter and buffer names and state-dict
layout, and runs on the compiled kernels through ``nn.functional``: group and
instance norm share one kernel (statistics per sample and group of channels),
layer norm is that kernel with one group per row, and BatchNorm3d is
:class:`~minidl.nn.layers.BatchNorm` for 5-d inputs. All of them compute their
statistics with the same core as batch norm (two passes, accumulated in double).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import _checks
from .. import distributed as _distributed
from ..tensor import Tensor
from . import functional as F
from .layers import BatchNorm, _check_input, _NormBase


class LayerNorm(_NormBase):
    """Layer normalization over the trailing ``normalized_shape`` dims (PyTorch's ``nn.LayerNorm``).

    Input (*, *normalized_shape), output the same shape: each sample is normalized
    by the mean and biased variance of its last ``len(normalized_shape)`` dims.
    With ``elementwise_affine`` the result is scaled by ``weight`` (ones) and
    shifted by ``bias`` (zeros, absent with ``bias=False``), both of shape
    ``normalized_shape``: one value per normalized element.

    >>> ln = minidl.nn.LayerNorm(768)
    >>> ln(minidl.randn(4, 196, 768)).shape
    (4, 196, 768)
    >>> sorted(ln.state_dict())
    ['bias', 'weight']
    """

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape, "LayerNorm")
        self.eps = _checks.real(eps, "LayerNorm", "eps", low=0.0)
        self.elementwise_affine = bool(elementwise_affine)
        self._create_affine(self.normalized_shape, self.elementwise_affine, bias)

    def forward(self, x: Tensor) -> Tensor:
        shape = self.normalized_shape
        _check_input(
            self,
            x,
            x.ndim >= len(shape) and x.shape[x.ndim - len(shape) :] == shape,
            f"(*, {', '.join(map(str, shape))})",
        )
        F._same_dtype("LayerNorm", x, weight=self.weight, bias=self.bias)
        return F._LayerNormFn.apply(
            x, self.weight, self.bias, normalized_ndim=len(shape), eps=self.eps
        )

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(_NormBase):
    """Group normalization (PyTorch's ``nn.GroupNorm``): statistics per sample and group.

    Input (N, C, *), output the same shape. The ``num_channels`` channels are split
    into ``num_groups`` groups of consecutive channels (``num_groups`` must divide
    ``num_channels``); each sample's group is normalized by its own mean and
    biased variance over its channels and every trailing axis. With ``affine``,
    a per-channel ``weight`` (ones) and ``bias`` (zeros, absent with ``bias=False``),
    of shape (C,). No running statistics: training and evaluation agree.

    >>> gn = minidl.nn.GroupNorm(32, 64)
    >>> gn(minidl.randn(2, 64, 7, 7)).shape
    (2, 64, 7, 7)
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_groups = _checks.positive_int(num_groups, "GroupNorm", "num_groups")
        self.num_channels = _checks.positive_int(num_channels, "GroupNorm", "num_channels")
        F._group_count(self.num_groups, self.num_channels, "GroupNorm")
        self.eps = _checks.real(eps, "GroupNorm", "eps", low=0.0)
        self.affine = bool(affine)
        self._create_affine(self.num_channels, self.affine, bias)

    def forward(self, x: Tensor) -> Tensor:
        _check_input(
            self, x, x.ndim >= 2 and x.shape[1] == self.num_channels, f"(N, {self.num_channels}, *)"
        )
        F._same_dtype("GroupNorm", x, weight=self.weight, bias=self.bias)
        return F._GroupNormFn.apply(
            x, self.weight, self.bias, num_groups=self.num_groups, eps=self.eps
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class _InstanceNorm(_NormBase):
    """What InstanceNorm1d and 2d share: parameters, buffers and forward (PyTorch's
    ``_InstanceNorm``); subclasses give the rank of a batched input."""

    _batched_rank = 3
    _shape_text = "(N, {0}, L) or ({0}, L)"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self._per_feature_state(num_features, eps, momentum, affine, track_running_stats, bias)

    def forward(self, x: Tensor) -> Tensor:
        batched = self._batched_rank
        channel_dim = 1 if x.ndim == batched else 0
        _check_input(
            self,
            x,
            x.ndim in (batched - 1, batched) and x.shape[channel_dim] == self.num_features,
            self._shape_text.format(self.num_features),
        )
        unbatched = x.ndim == batched - 1
        if unbatched:
            x = x.unsqueeze(0)
        use_input_stats = self.training or not self.track_running_stats
        if use_input_stats:
            _checks.spatial_elements(x.shape, type(self).__name__)
        # PyTorch leaves num_batches_tracked at 0 and takes momentum=None as 0
        y = F._instance_norm(
            x,
            self.running_mean,  # None without track_running_stats
            self.running_var,
            self.weight,
            self.bias,
            use_input_stats,
            0.0 if self.momentum is None else self.momentum,
            self.eps,
            type(self).__name__,
        )
        return y.squeeze(0) if unbatched else y

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class InstanceNorm1d(_InstanceNorm):
    """Instance normalization of (N, C, L) or unbatched (C, L) inputs (``nn.InstanceNorm1d``).

    Each (sample, channel) is normalized by the mean and biased variance of its L
    values. PyTorch's defaults: ``affine=False`` (no ``weight``/``bias``) and
    ``track_running_stats=False`` (the input's statistics always). With
    ``track_running_stats`` the buffers ``running_mean``, ``running_var`` move in
    training toward the samples' mean statistics (unbiased variance) and normalize
    in evaluation; ``num_batches_tracked`` stays 0, as in PyTorch.

    >>> norm = minidl.nn.InstanceNorm1d(3)
    >>> y = norm(minidl.randn(4, 3, 10))
    >>> [round(v, 6) + 0.0 for v in y.mean(dim=2)[0].tolist()]
    [0.0, 0.0, 0.0]
    """


class InstanceNorm2d(_InstanceNorm):
    """Instance normalization of (N, C, H, W) or unbatched (C, H, W) inputs (``nn.InstanceNorm2d``).

    Each (sample, channel) plane is normalized by its own mean and biased variance;
    otherwise as :class:`InstanceNorm1d` (``affine=False``, ``track_running_stats=False``
    by default).

    >>> norm = minidl.nn.InstanceNorm2d(3, affine=True, track_running_stats=True)
    >>> norm(minidl.randn(2, 3, 8, 8)).shape
    (2, 3, 8, 8)
    >>> sorted(norm.state_dict())
    ['bias', 'num_batches_tracked', 'running_mean', 'running_var', 'weight']
    """

    _batched_rank = 4
    _shape_text = "(N, {0}, H, W) or ({0}, H, W)"


class BatchNorm3D(BatchNorm):
    """:class:`~minidl.nn.BatchNorm` for (N, C, D, H, W) inputs only (PyTorch's ``BatchNorm3d``).

    Statistics per channel over the batch and the three trailing axes; the same
    parameters, buffers, momentum rule and state dict as BatchNorm. ``BatchNorm3d``
    is the same class under PyTorch's spelling.

    >>> minidl.nn.BatchNorm3D(4)(minidl.randn(2, 4, 3, 5, 5)).shape
    (2, 4, 3, 5, 5)
    """

    _ranks = (5,)
    _shape_text = "(N, {0}, D, H, W)"


BatchNorm3d = BatchNorm3D
"""torch's name for :class:`BatchNorm3D` (the same class): ``nn.BatchNorm3d(8)``."""


class SyncBatchNorm(BatchNorm):
    """Batch normalization whose training statistics span every rank's batch (``nn.SyncBatchNorm``).

    Input (N, C, *) with 2 to 5 dims, output the same shape; the same parameters,
    buffers, momentum rule and state dict as :class:`~minidl.nn.BatchNorm`. In
    training, under ``minidl.distributed`` with more than one rank, the mean and
    variance are those of the union of every rank's batch: each rank's
    per-channel count, mean and sum of squared deviations (compiled kernels) are
    gathered and merged with Chan et al.'s parallel formula; the backward sums
    its two per-channel sums over the ranks; the running statistics take the
    global mean and the unbiased variance over the global count. Ranks may hold
    batches of different sizes (even empty ones, if the union has two values per
    channel). With one process, or in evaluation, it is BatchNorm exactly (as
    torch's). Every rank must call it the same number of times in the same order.

    >>> sbn = minidl.nn.SyncBatchNorm(3)
    >>> sbn(minidl.randn(8, 3, 4, 4)).shape
    (8, 3, 4, 4)
    >>> list(sbn.state_dict()) == list(minidl.nn.BatchNorm(3).state_dict())
    True
    """

    _ranks = (2, 3, 4, 5)
    _shape_text = "(N, {0}, *) with 2 to 5 dims"

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        if process_group is not None:
            raise ValueError(
                "SyncBatchNorm: only the world's process group exists; pass process_group=None"
            )
        super().__init__(num_features, eps, momentum, affine, track_running_stats, bias=bias)
        self.process_group = None

    def _needs_sync(self):
        return self.training and _distributed.is_initialized() and _distributed.get_world_size() > 1

    def forward(self, x: Tensor) -> Tensor:
        if not self._needs_sync():
            return super().forward(x)
        # the statistics span every rank: a rank's own batch may be small, even empty
        _, tracked = self._check_and_count(x, local_statistics=False)
        return F._batch_norm(
            x,
            self._running("running_mean"),
            self._running("running_var"),
            self.weight,
            self.bias,
            True,
            self.momentum,
            self.eps,
            tracked,
            synchronized_as="SyncBatchNorm",
        )

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BatchNorm layer replaced by a SyncBatchNorm (torch's helper).

        The new layers take over the old ones' parameters (the same Parameter
        objects, so an optimizer made before still updates them), running
        statistics, ``num_batches_tracked``, hyperparameters and training mode.
        Returns the converted module (a new object if ``module`` itself is a
        BatchNorm; otherwise ``module``, changed in place).

        >>> model = minidl.nn.Sequential(minidl.nn.Conv2D(1, 4, 3), minidl.nn.BatchNorm2D(4))
        >>> model = minidl.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        >>> type(model[1]).__name__
        'SyncBatchNorm'
        """
        if process_group is not None:
            raise ValueError(
                "convert_sync_batchnorm: only the world's process group exists; "
                "pass process_group=None"
            )
        if isinstance(module, BatchNorm) and not isinstance(module, SyncBatchNorm):
            converted = cls(
                module.num_features,
                module.eps,
                module.momentum,
                module.affine,
                module.track_running_stats,
                bias=module.bias_enabled,
            )
            if module.affine:
                converted.weight = module.weight
                if module.bias is not None:
                    converted.bias = module.bias
            if module.track_running_stats:
                converted.running_mean = module.running_mean
                converted.running_var = module.running_var
                converted.num_batches_tracked = module.num_batches_tracked
            converted.train(module.training)
            return converted
        for name, child in list(module.named_children()):
            replaced = cls.convert_sync_batchnorm(child)
            if replaced is not child:
                module.add_module(name, replaced)
        return module
