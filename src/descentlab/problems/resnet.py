"""Residual networks for small images: He et al.'s CIFAR ResNet-20 and ResNet-18.

``resnet20`` is He et al. 2016's CIFAR network (section 4.2; shortcuts of option A:
identity, or subsampled and zero-padded; ``blocks=3`` per stage, 5 gives ResNet-32, 9
ResNet-56); ``resnet18`` table 1's 18-layer network (projection shortcuts, option B) with a
``"cifar"`` or ``"imagenet"`` stem. Their layers and parameter counts: docs/data-and-models.md.

Every convolution has no bias (a BatchNorm follows it) and starts from He (Kaiming) normal
initialisation (fan-out, as torchvision's ResNets), BatchNorm from weight 1 and bias 0; the
read-out from torch's default. Activations are not in-place, so the models work under
``torch.func.functional_call`` (the running statistics are buffers: stacked per run in a
vectorized pass, saved in checkpoints).

References:
    He, Zhang, Ren & Sun, "Deep residual learning for image recognition", CVPR 2016,
    https://arxiv.org/abs/1512.03385.
    Ioffe & Szegedy, "Batch normalization", 2015, https://arxiv.org/abs/1502.03167.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["STEMS", "ResNet", "resnet18", "resnet20"]

#: The stems of :func:`resnet18`.
STEMS: tuple[str, ...] = ("cifar", "imagenet")


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class _PadShortcut(nn.Module):
    """He et al.'s option A: subsample by ``stride`` and zero-pad the new channels."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.extra, self.stride = c_out - c_in, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra))


class BasicBlock(nn.Module):
    """``relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))``, two 3x3 convolutions.

    Args:
        c_in, c_out: channels in and out.
        stride: of the first convolution (and the shortcut).
        shortcut: ``"pad"`` (option A) or ``"project"`` (option B) where the shape changes.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = _conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = _conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = (
                _PadShortcut(c_in, c_out, stride)
                if shortcut == "pad"
                else nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
                )
            )

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + self.shortcut(x))


class ResNet(nn.Module):
    """A stem, stages of :class:`BasicBlock`, global average pooling and a linear read-out.

    Args:
        in_channels: input channels.
        n_outputs: outputs (classes).
        widths: channels of each stage (the first starts at stride 1, the others at 2).
        blocks: basic blocks per stage.
        stem: ``"cifar"`` (a 3x3 convolution to ``stem_width`` channels, stride 1) or
            ``"imagenet"`` (7x7, stride 2, then a 3x3 max-pool of stride 2).
        stem_width: channels out of the stem.
        shortcut: ``"pad"`` (option A, no parameters) or ``"project"`` (option B).
    """

    def __init__(
        self,
        in_channels: int,
        n_outputs: int,
        *,
        widths: Sequence[int],
        blocks: Sequence[int],
        stem: str = "cifar",
        stem_width: int | None = None,
        shortcut: str = "pad",
    ) -> None:
        super().__init__()
        width = widths[0] if stem_width is None else stem_width
        if stem == "cifar":
            self.stem = nn.Sequential(
                _conv3x3(in_channels, width), nn.BatchNorm2d(width), nn.ReLU()
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, width, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
                nn.MaxPool2d(3, stride=2, padding=1),
            )
        stages: list[nn.Module] = []
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            layers = []
            for j in range(n):
                layers.append(BasicBlock(width, w, 2 if i > 0 and j == 0 else 1, shortcut))
                width = w
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Linear(width, n_outputs)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        h = self.stages(self.stem(x))
        return self.head(h.mean(dim=(2, 3)))


def resnet20(in_channels: int, n_outputs: int, *, width: int = 16, blocks: int = 3) -> ResNet:
    """He et al.'s CIFAR ResNet with ``6 blocks + 2`` layers (ResNet-20 by default).

    Example:
        >>> import torch
        >>> m = resnet20(3, 10)
        >>> sum(p.numel() for p in m.parameters()), m(torch.zeros(2, 3, 32, 32)).shape
        (269722, torch.Size([2, 10]))
    """
    return ResNet(
        in_channels, n_outputs, widths=(width, 2 * width, 4 * width), blocks=(blocks,) * 3,
        stem="cifar", shortcut="pad",
    )  # fmt: skip


def resnet18(in_channels: int, n_outputs: int, *, width: int = 64, stem: str = "cifar") -> ResNet:
    """ResNet-18 (He et al.'s table 1), with the CIFAR or the ImageNet stem."""
    if stem not in STEMS:
        raise ValueError(f"stem must be one of {', '.join(STEMS)}, got {stem!r}")
    return ResNet(
        in_channels, n_outputs, widths=(width, 2 * width, 4 * width, 8 * width),
        blocks=(2, 2, 2, 2), stem=stem, shortcut="project",
    )  # fmt: skip
