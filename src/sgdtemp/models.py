"""Networks for the image chapters: a small CPU CNN, an MLP, a GPU ResNet.

All three train with plain SGD (no momentum, no schedule) at a constant learning
rate: BatchNorm keeps the CNNs' effective step size under control, and the ResNet's
residual branches start near zero (last BN weight 0) so the deep net starts as a
shallow one. Inputs are normalised float images (N, C, H, W).
"""

from __future__ import annotations

import os

# Spinning OpenMP threads collapse throughput when the CPU is shared (measured: 2 threads
# at ~100 img/s instead of ~1500 under a load of 5 on 2 cores). Read once, when torch
# loads: effective only if this module is the first to import torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch
from torch import nn

from sgdtemp.params import ParameterError

MODELS = ("small_cnn", "mlp", "resnet")
#: Models without BatchNorm or other state updated in the forward pass, whose runs can
#: share one vectorized step (``sgdtemp.train.run_trainings``).
STATELESS_MODELS = ("mlp",)


def _conv_bn(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


def _conv_pool_bn(c_in: int, c_out: int) -> list[nn.Module]:
    # Pooling before BN and ReLU: the same function class (ReLU commutes with max),
    # but the memory-bound BN and ReLU touch 4× fewer values, which matters on a CPU.
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2),
            nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


def small_cnn(n_classes: int = 10, in_channels: int = 3, width: int = 16) -> nn.Module:
    """Three conv–maxpool–BN–ReLU stages of ``width``, 2·``width``, 4·``width`` channels
    (3×3 convolutions, 2×2 pooling), global average pooling, one linear layer.

    ``width=16``: 24,346 parameters on CIFAR-10 (3 channels, 10 classes); ~2.8 M
    multiply–adds per 32×32 image forward.
    """
    w = width
    return nn.Sequential(
        *_conv_pool_bn(in_channels, w),
        *_conv_pool_bn(w, 2 * w),
        *_conv_pool_bn(2 * w, 4 * w),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(4 * w, n_classes),
    )


def mlp(n_classes: int = 10, in_features: int = 784, width: int = 256, depth: int = 2) -> nn.Module:
    """``depth`` hidden layers of ``width`` ReLU units on flattened images.

    Defaults (Fashion-MNIST): 784 → 256 → 256 → 10, 269,322 parameters.
    """
    layers: list[nn.Module] = [nn.Flatten()]
    d = in_features
    for _ in range(depth):
        layers += [nn.Linear(d, width), nn.ReLU(inplace=True)]
        d = width
    layers.append(nn.Linear(d, n_classes))
    return nn.Sequential(*layers)


class _Residual(nn.Module):
    """x + BN(conv(ReLU(BN(conv(x))))), the second BN's weight starting at 0."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(c, c),
            nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
        )
        nn.init.zeros_(self.body[-1].weight)  # start as the identity map

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.body(x))


def resnet(n_classes: int = 10, in_channels: int = 3, width: int = 64) -> nn.Module:
    """A ResNet-9-style net: stem conv, then three stages (``width``·1, 2, 4 channels),
    each conv–BN–ReLU–maxpool followed by a residual block; global max pooling; linear.

    ``width=64``: 1,960,906 parameters on CIFAR-10 (meant for the GPU; slow on a CPU).
    """
    w = width
    return nn.Sequential(
        *_conv_bn(in_channels, w),
        *_conv_bn(w, w), _Residual(w), nn.MaxPool2d(2),
        *_conv_bn(w, 2 * w), _Residual(2 * w), nn.MaxPool2d(2),
        *_conv_bn(2 * w, 4 * w), _Residual(4 * w), nn.MaxPool2d(2),
        nn.AdaptiveMaxPool2d(1), nn.Flatten(),
        nn.Linear(4 * w, n_classes),
    )


def build_model(name: str, n_classes: int = 10, in_channels: int = 3, *,
                image_size: int = 32, width: int | None = None,
                depth: int | None = None) -> nn.Module:
    """The network ``name`` ∈ {"small_cnn", "mlp", "resnet"}; ``width`` None = its default.

    ``image_size`` (side in pixels) only matters for the MLP's input layer; ``depth`` (hidden
    layers) only for the MLP (None: 2). Parameters are initialised from torch's global
    generator: seed it first for reproducible weights.
    """
    kw = {} if width is None else {"width": width}
    if depth is not None and name != "mlp":
        raise ParameterError(f"depth applies to the mlp only; got depth={depth!r} for {name!r}.")
    if name == "small_cnn":
        return small_cnn(n_classes, in_channels, **kw)
    if name == "mlp":
        if depth is not None:
            kw["depth"] = depth
        return mlp(n_classes, in_channels * image_size * image_size, **kw)
    if name == "resnet":
        return resnet(n_classes, in_channels, **kw)
    raise ParameterError(f"model must be one of {', '.join(map(repr, MODELS))}; got {name!r}.")


#: Layers between a convolution (or linear map) and its BatchNorm that commute with a positive
#: scaling of their input, channel by channel: f(c·z + b) = c·f(z) + b for c > 0.
_SCALE_COMMUTING = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveMaxPool2d,
                    nn.AdaptiveAvgPool2d, nn.Identity)
_BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def scale_invariant_weights(model: nn.Module) -> list[str]:
    """Names (as in ``model.named_parameters()``) of the weights the training-mode output does
    not see the scale of: the weight of every ``Conv2d``/``Linear`` whose output feeds one
    BatchNorm and nothing else, directly or through layers that commute with a positive
    scaling (max and average pooling, identity), found on the module graph traced by
    ``torch.fx``.

    Why these: a BatchNorm in training mode normalises each channel by the batch's own mean
    and standard deviation, so BN(c·Wx + b) = BN(Wx) for every c > 0 (and any bias b), and a
    max-pool between them does not change that (maxpool(c·z) = c·maxpool(z)). The loss is
    then invariant under W → cW, its gradient is orthogonal to W and scales as 1/``|W|``. Each
    output channel is scale-invariant by itself; so is the whole list taken together.

    ``small_cnn``: the three convolutions ``0.weight``, ``4.weight``, ``8.weight`` (each
    conv → maxpool → BatchNorm), not the final linear layer (nothing normalises its output)
    nor BatchNorm's own weight and bias. ``resnet``: every convolution (each is followed by
    its BatchNorm). The ``mlp`` has none. Invariance holds up to BatchNorm's ε (1e-5 added
    to the batch variance) and only in training mode (evaluation uses running statistics).
    """
    import torch.fx

    graph = torch.fx.symbolic_trace(model).graph
    modules = dict(model.named_modules())
    names = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], (nn.Conv2d, nn.Linear)):
            continue
        cur = node
        while len(cur.users) == 1:
            (nxt,) = cur.users
            if nxt.op != "call_module":
                break
            m = modules[nxt.target]
            if isinstance(m, _BATCHNORMS):
                names.append(f"{node.target}.weight")
                break
            if not isinstance(m, _SCALE_COMMUTING):
                break
            cur = nxt
    return names


def n_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
