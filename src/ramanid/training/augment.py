"""Augmentation for spectra, applied to training batches only. Off by default."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Augment:
    """Random, label-preserving perturbations of a batch of spectra.

    Parameters
    ----------
    shift : int
        Largest shift, in points, of a random roll (edges repeat the end values).
    scale : float
        Intensity scaling by a factor in ``[1 - scale, 1 + scale]``.
    noise : float
        Standard deviation of Gaussian noise, relative to each spectrum's range.
    baseline : float
        Amplitude of a smooth random drift (a quadratic), relative to each spectrum's range.
    spikes : float
        Probability that a spectrum gets one cosmic-ray-like spike of up to its range.
    broaden : float
        Largest standard deviation, in points, of a Gaussian blur: the lower resolution of another
        spectrometer or grating.
    truncate : float
        Largest share of the points cut from either end (filled with the value at the cut), as
        when an instrument covers a shorter range.
    """

    shift: int = 0
    scale: float = 0.0
    noise: float = 0.0
    baseline: float = 0.0
    spikes: float = 0.0
    broaden: float = 0.0
    truncate: float = 0.0

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        n, p = x.shape
        span = (x.amax(1, keepdim=True) - x.amin(1, keepdim=True)).clamp_min(1e-12)

        def uniform(*shape):
            return torch.rand(*shape, generator=generator, device=x.device)

        if self.shift:
            offsets = torch.randint(-self.shift, self.shift + 1, (n, 1), generator=generator, device=x.device)
            index = (torch.arange(p, device=x.device)[None, :] - offsets).clamp(0, p - 1)
            x = x.gather(1, index)
        if self.scale:
            x = x * (1 + self.scale * (2 * uniform(n, 1) - 1))
        if self.baseline:
            t = torch.linspace(-1, 1, p, device=x.device)[None, :]
            a, b = (2 * uniform(n, 1) - 1), (2 * uniform(n, 1) - 1)
            x = x + self.baseline * span * (a * t + b * t**2)
        if self.noise:
            x = x + self.noise * span * torch.randn(n, p, generator=generator, device=x.device)
        if self.broaden:
            x = _blur(x, self.broaden * uniform(n, 1))
        if self.truncate:
            cut = (self.truncate * p * uniform(n, 2)).long()  # points cut at the start and at the end
            index = torch.arange(p, device=x.device)[None, :].clamp(
                cut[:, :1], (p - 1 - cut[:, 1:]).clamp_min(cut[:, :1])
            )
            x = x.gather(1, index)
        if self.spikes:
            hit = uniform(n) < self.spikes
            where = torch.randint(0, p, (n,), generator=generator, device=x.device)
            x = x.clone()
            x[hit, where[hit]] += span[hit, 0] * uniform(int(hit.sum()))
        return x

    @property
    def active(self) -> bool:
        return any((self.shift, self.scale, self.noise, self.baseline, self.spikes, self.broaden, self.truncate))


def _blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each row convolved with a normalised Gaussian of its own ``sigma`` (points); edges repeat."""
    half = max(1, int(3 * float(sigma.max())))
    offsets = torch.arange(-half, half + 1, device=x.device, dtype=x.dtype)
    kernels = torch.exp(-0.5 * (offsets[None, :] / sigma.clamp_min(1e-3)) ** 2)
    kernels = kernels / kernels.sum(1, keepdim=True)
    padded = torch.nn.functional.pad(x[:, None, :], (half, half), mode="replicate")[:, 0, :]
    windows = padded.unfold(1, 2 * half + 1, 1)  # (n, p, kernel)
    return torch.einsum("npk,nk->np", windows, kernels)
