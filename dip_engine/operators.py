"""Forward maps A of the restoration tasks. The data term is ‖A(f_θ(z)) − x0‖², nothing else.

Each operator also has `degrade(x, rng)`, which makes a synthetic observation from a clean image,
for tests and benchmarks. Operators act on tensors shaped (..., C, H, W).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from dip_engine.functional import lanczos_downsample, lanczos_kernel_1d


def _as_batch(x: Tensor) -> tuple[Tensor, torch.Size]:
    return x.reshape(-1, *x.shape[-3:]), x.shape


class Operator(ABC):
    """A forward map from the restored image to the observation."""

    def output_size(self, observed: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of the restored image for an observation of size `observed`."""
        return observed

    @abstractmethod
    def A(self, x: Tensor) -> Tensor:  # noqa: N802 - named as in the maths
        """The forward map."""

    def data_term(self, x: Tensor, observation: Tensor) -> Tensor:
        """Mean squared residual ‖A(x) − x0‖² / n."""
        return F.mse_loss(self.A(x), observation)

    @property
    def known(self) -> Tensor | None:
        """The pixels of the restored image that the observation gives as they are (1), if any."""
        return None

    @abstractmethod
    def degrade(self, x: Tensor, rng: torch.Generator) -> Tensor:
        """A synthetic observation of the clean image `x`, drawn with `rng`."""

    def to(self, device: torch.device | str) -> Operator:
        return self


def _noise_like(x: Tensor, rng: torch.Generator) -> Tensor:
    return torch.randn(x.shape, generator=rng, dtype=x.dtype, device=rng.device).to(x.device)


@dataclass(frozen=True)
class Denoising(Operator):
    """A = identity; x0 = x + σ·n, clipped to [0, 1]."""

    sigma: float = 25.0 / 255.0

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return x

    def degrade(self, x: Tensor, rng: torch.Generator) -> Tensor:
        return (x + self.sigma * _noise_like(x, rng)).clamp(0, 1)


@dataclass(frozen=True)
class SuperResolution(Operator):
    """A = Lanczos-2 filtering then decimation by the integer `factor` (the published `d`)."""

    factor: int

    def __post_init__(self) -> None:
        if isinstance(self.factor, bool) or not isinstance(self.factor, int) or self.factor < 2:
            raise ValueError(f"super-resolution factor must be an integer >= 2, got {self.factor!r}")

    def output_size(self, observed: tuple[int, int]) -> tuple[int, int]:
        return observed[0] * self.factor, observed[1] * self.factor

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"image of size {h}x{w} is not divisible by the factor {self.factor}")
        batch, shape = _as_batch(x)
        small = lanczos_downsample(batch, self.factor, lanczos_kernel_1d(self.factor))
        return small.reshape(*shape[:-2], h // self.factor, w // self.factor)

    def degrade(self, x: Tensor, rng: torch.Generator) -> Tensor:
        return self.A(x).clamp(0, 1)


@dataclass(frozen=True)
class Inpainting(Operator):
    """A(x) = x ⊙ m with a binary mask m (1 = known pixel), shaped (H, W), (1, H, W) or (C, H, W).

    The data term compares only known pixels, so whatever x0 holds under the mask (a hole, a
    watermark, a burnt-in timestamp) is ignored.
    """

    mask: Tensor

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return x * self.mask.to(dtype=x.dtype)

    def data_term(self, x: Tensor, observation: Tensor) -> Tensor:
        return F.mse_loss(self.A(x), self.A(observation))

    @property
    def known(self) -> Tensor:
        return self.mask

    def degrade(self, x: Tensor, rng: torch.Generator) -> Tensor:
        return self.A(x)

    def to(self, device: torch.device | str) -> Inpainting:
        return Inpainting(self.mask.to(device))


@dataclass(frozen=True)
class FlashNoFlash(Operator):
    """Flash/no-flash: A = identity on the no-flash image; the flash image is the network's input.

    x0 is the noisy no-flash photograph; `flash` (same size) carries the structure and becomes the
    input code z, so the generator reproduces the ambient lighting with the flash image's detail.
    """

    flash: Tensor
    sigma: float = 25.0 / 255.0  # noise of the synthetic no-flash observation

    def A(self, x: Tensor) -> Tensor:  # noqa: N802
        return x

    def degrade(self, x: Tensor, rng: torch.Generator) -> Tensor:
        return (x + self.sigma * _noise_like(x, rng)).clamp(0, 1)

    def to(self, device: torch.device | str) -> FlashNoFlash:
        return FlashNoFlash(self.flash.to(device), self.sigma)


@dataclass(frozen=True)
class FlashPair:
    """A synthetic flash/no-flash pair and the clean ambient-lit image it should restore to."""

    no_flash: Tensor  # dim, warm, noisy
    flash: Tensor  # bright, cool, sharp, different shading
    ambient: Tensor  # the clean no-flash image (the target)


def synthesize_flash_pair(scene: Tensor, rng: torch.Generator, sigma: float = 25.0 / 255.0) -> FlashPair:
    """Make a flash/no-flash pair from one photograph `scene` (C, H, W) in [0, 1].

    Ambient light: dim, warm and falling off smoothly from one side. Flash: bright, cool and
    falling off radially from the centre, with a little sensor noise. The no-flash frame is the
    ambient image with σ noise, as in a low-light exposure.
    """
    c, h, w = scene.shape
    ys = torch.linspace(-1, 1, h).view(h, 1)
    xs = torch.linspace(-1, 1, w).view(1, w)
    warm = torch.tensor([1.0, 0.8, 0.6][:c] if c == 3 else [1.0] * c).view(c, 1, 1)
    cool = torch.tensor([0.9, 0.95, 1.0][:c] if c == 3 else [1.0] * c).view(c, 1, 1)
    ambient_light = 0.45 + 0.15 * xs + 0.05 * ys
    flash_light = 1.05 - 0.35 * (xs**2 + ys**2)
    ambient = (scene * ambient_light * warm).clamp(0, 1)
    flash_clean = (scene * flash_light * cool).clamp(0, 1)
    flash = (flash_clean + (3.0 / 255.0) * torch.randn(scene.shape, generator=rng)).clamp(0, 1)
    no_flash = (ambient + sigma * torch.randn(scene.shape, generator=rng)).clamp(0, 1)
    return FlashPair(no_flash=no_flash, flash=flash, ambient=ambient)


def block_mask(height: int, width: int, rng: torch.Generator, *, holes: int = 6, size: float = 0.12, dropout: float = 0.0) -> Tensor:
    """A binary (H, W) mask with `holes` missing rectangles of side ~`size`·min(H, W) and,
    optionally, a fraction `dropout` of missing pixels scattered at random."""
    mask = torch.ones(height, width)
    side = max(2, round(size * min(height, width)))
    for _ in range(holes):
        top = int(torch.randint(0, max(1, height - side), (1,), generator=rng))
        left = int(torch.randint(0, max(1, width - side), (1,), generator=rng))
        mask[top : top + side, left : left + side] = 0
    if dropout > 0:
        mask *= (torch.rand(height, width, generator=rng) >= dropout).float()
    return mask
