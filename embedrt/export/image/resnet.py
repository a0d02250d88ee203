"""torchvision's ResNet, rebuilt in plain torch with the same module names, so its checkpoints load without torchvision.

torchvision from PyPI does not import beside the CPU torch the export extra pins; the tests that
run in the torchvision environment (tests/test_image_torchvision.py) prove this module gives the
same vectors as torchvision.models.resnet* for the same state dict.
"""

from __future__ import annotations

import torch
from torch import nn

# name -> (block, blocks per stage); the ResNet-v1.5 layout torchvision uses (stride in the 3x3 conv).
ARCHITECTURES: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
EXPANSION = {"basic": 1, "bottleneck": 4}


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1 = _conv3x3(cin, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    def __init__(self, cin: int, planes: int, stride: int, downsample: nn.Module | None):
        super().__init__()
        self.conv1 = _conv1x1(cin, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * 4)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNetFeatures(nn.Module):
    """ResNet up to the global average pool: (batch, 3, H, W) -> (batch, 512 or 2048). No classifier head."""

    def __init__(self, architecture: str):
        super().__init__()
        kind, depths = ARCHITECTURES[architecture]
        block = BasicBlock if kind == "basic" else Bottleneck
        expansion = EXPANSION[kind]
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        cin = 64
        for stage, (planes, blocks) in enumerate(zip((64, 128, 256, 512), depths), start=1):
            stride = 1 if stage == 1 else 2
            downsample = None
            if stride != 1 or cin != planes * expansion:
                downsample = nn.Sequential(_conv1x1(cin, planes * expansion, stride), nn.BatchNorm2d(planes * expansion))
            layers = [block(cin, planes, stride, downsample)]
            cin = planes * expansion
            layers += [block(cin, planes, 1, None) for _ in range(blocks - 1)]
            setattr(self, f"layer{stage}", nn.Sequential(*layers))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dim = cin
        self._init_like_torchvision()

    def _init_like_torchvision(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return torch.flatten(self.avgpool(x), 1)


def guess_architecture(keys: set[str]) -> str | None:
    """Which torchvision ResNet a state dict's keys describe (for an error message), or None."""
    kind = "bottleneck" if "layer1.0.conv3.weight" in keys else "basic"
    depths = []
    for stage in range(1, 5):
        depths.append(len({k.split(".")[1] for k in keys if k.startswith(f"layer{stage}.")}))
    for name, arch in ARCHITECTURES.items():
        if arch == (kind, tuple(depths)):
            return name
    return None
