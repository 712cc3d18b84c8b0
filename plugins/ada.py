"""Adaptive discriminator augmentation (Karras et al. 2020, Training Generative Adversarial Networks with Limited
Data): extension ``ada``.

Every batch the discriminator sees (real and fake, in both updates, and what a penalty passes it) is augmented,
differentiably with respect to the images, by three groups of transforms, each applied to each sample
independently with probability p (the paper's ``bgc`` pipeline):

- ``blit`` (pixel blitting): x-flip, a rotation by a multiple of 90 degrees, an integer translation of up to
  1/8 of the side;
- ``geom`` (geometric): isotropic scaling by 2^N(0, 0.2^2), a rotation uniform in [-180, 180) degrees (applied
  before and after the anisotropic scaling, each with probability 1 - sqrt(1 - p), so that some rotation
  happens with probability p), anisotropic scaling by (s, 1/s), s = 2^N(0, 0.2^2), a fractional translation of
  N(0, 0.125^2) of the side;
- ``color``: brightness + N(0, 0.2^2), contrast * 2^N(0, 0.5^2), luma flip (reflection of the colour about the
  plane orthogonal to the luma axis), hue rotation about the luma axis, uniform in [-180, 180) degrees, saturation
  * 2^N(0, 1) orthogonal to the luma axis.

The blit and geom transforms compose into one 3x3 matrix per sample (in coordinates normalised to [-1, 1])
applied with one bilinear ``grid_sample`` with reflection padding (the paper uses a wavelet-filtered
upsampling around it, against aliasing; this is the plain version); the colour transforms compose into one
4x4 matrix per sample acting on RGB (a one-channel image is treated as grey RGB and averaged back). A group whose
transforms are all the identity (p = 0) is skipped, so at p = 0 the images pass unchanged.

p adapts: ``observe_discriminator`` gathers sign(D(real)) over ``interval`` discriminator updates (default 4),
r_t = their mean, and p <- clamp(p + sign(r_t - target) * batch_size * interval / (speed_kimg * 1000), 0,
1 - 2^-53) with target 0.6 and speed_kimg 500 (p can go from 0 to 1 in 500k images). ``adjust: false`` keeps p
fixed at its start value ``p``. p, the gathered signs and the random stream are in the ``state_dict``.
Random numbers come from the extension's own ``torch.Generator``, seeded from the run's seed and rank.
Under torchrun each rank adapts p from its own slice (r_t is not averaged across ranks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from ganzoo_plugins.extensions import name_list

from ganzoo import Extension, ExtensionContext, ExtensionSpec, hookimpl

GROUPS = ("blit", "geom", "color")
P_MAX = 1.0 - 2.0**-53  # p stays in [0, 1)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


# -- 3x3 (geometric, homogeneous 2-D) and 4x4 (colour, homogeneous RGB) matrices, one per sample ---------------
def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=tx.device).repeat(tx.shape[0], 1, 1)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=sx.device).repeat(sx.shape[0], 1, 1)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    m = torch.eye(3, device=theta.device).repeat(theta.shape[0], 1, 1)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def rotate90(k: torch.Tensor) -> torch.Tensor:
    """Rotation by k (B,) quarter turns, with exact entries (0, 1, -1)."""
    cos = torch.tensor([1.0, 0.0, -1.0, 0.0], device=k.device)[k]
    sin = torch.tensor([0.0, 1.0, 0.0, -1.0], device=k.device)[k]
    m = torch.eye(3, device=k.device).repeat(k.shape[0], 1, 1)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = cos, -sin, sin, cos
    return m


def translate3d(t: torch.Tensor) -> torch.Tensor:
    """Adds t (B,) to every colour channel."""
    m = torch.eye(4, device=t.device).repeat(t.shape[0], 1, 1)
    m[:, :3, 3] = t[:, None]
    return m


def scale3d(s: torch.Tensor) -> torch.Tensor:
    m = torch.eye(4, device=s.device).repeat(s.shape[0], 1, 1)
    m[:, 0, 0] = m[:, 1, 1] = m[:, 2, 2] = s
    return m


def rotate3d(axis: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta (B,) about the unit ``axis`` (3,) (Rodrigues' formula)."""
    x, y, z = axis
    c, s = torch.cos(theta), torch.sin(theta)
    C = 1 - c
    m = torch.eye(4, device=theta.device).repeat(theta.shape[0], 1, 1)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = x * x * C + c, x * y * C - z * s, x * z * C + y * s
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = y * x * C + z * s, y * y * C + c, y * z * C - x * s
    m[:, 2, 0], m[:, 2, 1], m[:, 2, 2] = z * x * C - y * s, z * y * C + x * s, z * z * C + c
    return m


class ADA(Extension):
    """Adaptive discriminator augmentation: blit, geom and color groups with probability p, p adapted towards
    E[sign(D(real))] = ``target``."""

    def __init__(self, p: float = 0.0, target: float = 0.6, speed_kimg: float = 500.0, interval: int = 4,
                 groups: str | Sequence[str] = "blit,geom,color", adjust: bool = True) -> None:
        self.p, self.target, self.speed_kimg = _number("p", p), _number("target", target), _number("speed_kimg",
                                                                                                     speed_kimg)
        if not 0.0 <= self.p < 1.0:
            raise ValueError(f"p must lie in [0, 1), not {self.p}")
        if not -1.0 <= self.target <= 1.0:
            raise ValueError(f"target must lie in [-1, 1] (0.6 is the paper's), not {self.target}")
        if self.speed_kimg <= 0:
            raise ValueError(f"speed_kimg must be > 0, not {self.speed_kimg}")
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise ValueError(f"interval must be a whole number >= 1, not {interval!r}")
        if not isinstance(adjust, bool):
            raise ValueError(f"adjust must be true or false, not {adjust!r}")
        self.groups = name_list("groups", groups, GROUPS, "group")
        self.interval, self.adjust = interval, adjust
        self.batch_size = 0
        self.signs, self.count = 0.0, 0  # sum of sign(D(real)) and updates gathered since p last moved
        self.generator: torch.Generator | None = None

    def setup(self, context: ExtensionContext) -> None:
        shape = tuple(context.image_shape)
        if len(shape) != 3 or shape[0] not in (1, 3):
            raise ValueError(f"ada augments images with 1 or 3 channels, not samples of shape {shape}")
        self.batch_size = int(context.config.batch_size)
        seed = (int(context.config.seed) * 1000003 + 41 + int(context.rank)) % 2**63
        self.generator = torch.Generator(device=context.device).manual_seed(seed)

    # -- adapting p --------------------------------------------------------------------------------------------
    def observe_discriminator(self, real_scores: torch.Tensor | None, fake_scores: torch.Tensor | None,
                              step: int) -> None:
        if not self.adjust or real_scores is None:
            return
        if isinstance(real_scores, tuple):  # a classifier discriminator: (scores, class_logits)
            real_scores = real_scores[0]
        self.signs += float(torch.sign(real_scores.detach().float()).mean())
        self.count += 1
        if self.count >= self.interval:
            r_t = self.signs / self.count
            step_size = self.batch_size * self.count / (self.speed_kimg * 1000)
            self.p = min(max(self.p + math.copysign(step_size, r_t - self.target) * (r_t != self.target), 0.0),
                         P_MAX)
            self.signs, self.count = 0.0, 0

    # -- augmenting ----------------------------------------------------------------------------------------------
    def augment(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4:
            raise ValueError(f"ada expects an image batch (B, C, H, W), got shape {tuple(images.shape)}")
        x = images
        if self.p > 0 and ("blit" in self.groups or "geom" in self.groups):
            x = self.geometric(x)
        if self.p > 0 and "color" in self.groups:
            x = self.color(x)
        return x

    def _uniform(self, n: int) -> torch.Tensor:
        gen = self._rng()
        return torch.rand(n, generator=gen, device=gen.device)

    def _normal(self, n: int) -> torch.Tensor:
        gen = self._rng()
        return torch.randn(n, generator=gen, device=gen.device)

    def _integers(self, high: int, n: int) -> torch.Tensor:
        gen = self._rng()
        return torch.randint(0, high, (n,), generator=gen, device=gen.device)

    def _apply(self, value: torch.Tensor, identity: float, p: float | None = None) -> torch.Tensor:
        """``value`` where a per-sample U[0, 1) draw is below p (default ``self.p``), ``identity`` elsewhere."""
        chosen = self._uniform(value.shape[0]) < (self.p if p is None else p)
        return torch.where(chosen, value, torch.full_like(value, identity))

    def geometric_matrix(self, B: int, H: int, W: int) -> torch.Tensor:
        """The (B, 3, 3) matrices, in normalised coordinates, from output pixels to where they are read."""
        m = torch.eye(3, device=self._rng().device).repeat(B, 1, 1)
        if "blit" in self.groups:
            flip = self._apply(1.0 - 2.0 * self._integers(2, B).float(), 1.0)
            m = m @ scale2d(flip, torch.ones_like(flip))
            quarter = self._apply(self._integers(4, B).float(), 0.0).long()
            m = m @ rotate90(quarter)
            tx = self._apply((self._uniform(B) * 2 - 1) * 0.125, 0.0)
            ty = self._apply((self._uniform(B) * 2 - 1) * 0.125, 0.0)
            # integer pixels: the side is 2 in normalised coordinates
            m = m @ translate2d(torch.round(tx * W) * 2 / W, torch.round(ty * H) * 2 / H)
        if "geom" in self.groups:
            s = self._apply(torch.exp2(self._normal(B) * 0.2), 1.0)
            m = m @ scale2d(s, s)
            p_rot = 1 - math.sqrt(1 - self.p)
            m = m @ rotate2d(self._apply((self._uniform(B) * 2 - 1) * math.pi, 0.0, p_rot))
            s = self._apply(torch.exp2(self._normal(B) * 0.2), 1.0)
            m = m @ scale2d(s, 1 / s)
            m = m @ rotate2d(self._apply((self._uniform(B) * 2 - 1) * math.pi, 0.0, p_rot))
            tx = self._apply(self._normal(B) * 0.125, 0.0)
            ty = self._apply(self._normal(B) * 0.125, 0.0)
            m = m @ translate2d(tx * 2, ty * 2)
        return m

    def geometric(self, x: torch.Tensor) -> torch.Tensor:
        """The blit and geom groups, one bilinear resampling with reflection padding."""
        B, _, H, W = x.shape
        m = self.geometric_matrix(B, H, W).to(x.device)
        if torch.equal(m, torch.eye(3, device=m.device).expand(B, 3, 3)):
            return x
        grid = F.affine_grid(m[:, :2, :].to(x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    def color_matrix(self, B: int) -> torch.Tensor:
        """The (B, 4, 4) colour matrices acting on homogeneous RGB in [-1, 1]."""
        device = self._rng().device
        m = torch.eye(4, device=device).repeat(B, 1, 1)
        luma = torch.tensor([1.0, 1.0, 1.0], device=device) / math.sqrt(3)
        v = torch.cat([luma, torch.zeros(1, device=device)])
        vv = torch.outer(v, v)
        m = translate3d(self._apply(self._normal(B) * 0.2, 0.0)) @ m  # brightness
        m = scale3d(self._apply(torch.exp2(self._normal(B) * 0.5), 1.0)) @ m  # contrast
        flip = self._apply(self._integers(2, B).float(), 0.0)  # luma flip: I - 2 v v^T
        m = (torch.eye(4, device=device) - 2 * vv * flip[:, None, None]) @ m
        m = rotate3d(luma, self._apply((self._uniform(B) * 2 - 1) * math.pi, 0.0)) @ m  # hue
        s = self._apply(torch.exp2(self._normal(B)), 1.0)  # saturation
        m = (vv + (torch.eye(4, device=device) - vv) * s[:, None, None]) @ m
        return m

    def color(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        m = self.color_matrix(B).to(x.device, x.dtype)
        if torch.equal(m, torch.eye(4, device=m.device, dtype=m.dtype).expand(B, 4, 4)):
            return x
        rgb = x.expand(B, 3, H, W) if C == 1 else x
        out = torch.einsum("bij,bjhw->bihw", m[:, :3, :3], rgb) + m[:, :3, 3, None, None]
        return out.mean(dim=1, keepdim=True) if C == 1 else out

    # -- state -------------------------------------------------------------------------------------------------
    def _rng(self) -> torch.Generator:
        if self.generator is None:
            raise RuntimeError("the ada extension was used before setup()")
        return self.generator

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "signs": self.signs, "count": self.count, "generator": self._rng().get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or not isinstance(state.get("generator"), torch.Tensor):
            raise ValueError("the saved ada state holds no random generator state ('generator')")
        self.p, self.signs, self.count = float(state["p"]), float(state["signs"]), int(state["count"])
        self._rng().set_state(state["generator"].cpu())


@hookimpl
def register_extensions(register):
    register(ExtensionSpec("ada", ADA, "Adaptive discriminator augmentation (pixel blitting, geometric, colour) "
                           "with p adapted to E[sign D(real)] = 0.6",
                           "Karras et al. 2020, Training Generative Adversarial Networks with Limited Data"))
