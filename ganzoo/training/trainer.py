"""Where a step happens: :class:`Trainer` owns the networks, optimisers, data position, random states and extension
states behind ``state_dict()`` / ``load_state_dict()``; :meth:`Trainer.train_step` runs ``n_critic`` discriminator
updates, then one generator update, naming the points where extensions act. What happens around the steps (logs,
grids, checkpoints, evaluations) is added by the callbacks of :func:`ganzoo.training.loop.run_loop`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from .. import checkpoint as ckpt
from .. import fast_paths
from ..components import ExtensionContext, Loss, implements
from ..config import TrainConfig
from ..data import ImageData, make_batches
from ..distributed import DistInfo, barrier, gather_objects
from ..errors import CheckpointError, ConfigError, DivergenceError, PluginError
from .assembly import PENALTY_KEYWORDS, Assembly, BuiltExtension, declared_keywords
from .randomness import rng_state, set_rng_state
from .sampling import draw_labels, generate
from .schedules import values_at, with_values

CHECKPOINT_FORMAT = 2
SCATTER_POINTS = 2500  #: real and generated points in the scatter plot that replaces the grid for non-image data
# What a format-1 checkpoint (the first format, from before labels and extensions) holds.
STATE_KEYS_FORMAT_1 = ("format", "step", "critic_position", "generator", "discriminator", "opt_g", "opt_d", "scaler_d",
                       "scaler_g", "data", "world_size", "noise", "rng", "config", "components", "image_shape",
                       "versions")
# What Trainer.state_dict() writes; a checkpoint missing any of these cannot be resumed exactly.
STATE_KEYS = (*STATE_KEYS_FORMAT_1, "num_classes", "extensions", "sample_generator")
#: The points of a step where extensions act, besides ``setup`` (see :class:`ganzoo.Extension`).
EXTENSION_POINTS = ("augment", "discriminator_penalty", "observe_discriminator", "after_discriminator_step",
                    "generator_penalty", "after_generator_step", "sampling_generator")


def make_optimizer(name: str, params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float],
                   fused: bool = False) -> torch.optim.Optimizer:
    """Adam (with ``betas``, fused kernels if asked), RMSprop or SGD (momentum = ``betas[0]``)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr)
    return torch.optim.SGD(params, lr=lr, momentum=betas[0])


class DiscriminatorView:
    """D as losses and extensions call it: ``D(x)``, or ``D(x, labels)`` (ignored by an unconditional one), with
    ``augments`` (each extension's ``augment``, then ``discriminator_input``) applied to ``x`` first."""
    def __init__(self, D: nn.Module, conditional: bool, augments: list[Callable[[torch.Tensor], torch.Tensor]],
                 name: str, joint: bool = False) -> None:
        self.D, self.conditional, self.augments, self.name, self.joint = D, conditional, augments, name, joint
        self.watch()

    def watch(self, real: torch.Tensor | None = None, fake: torch.Tensor | None = None) -> None:
        """Record D's outputs (detached) in ``scores`` on these very batches till the next call; ``watch()`` stops."""
        self.watched: dict[str, torch.Tensor] = {r: x for r, x in (("real", real), ("fake", fake)) if x is not None}
        self.scores: dict[str, Any] = {}

    def _record(self, given: torch.Tensor, out: Any) -> None:
        for role, batch in self.watched.items():
            if given is batch:
                self.scores[role] = tuple(s.detach() for s in out) if isinstance(out, (tuple, list)) else out.detach()

    def __call__(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> Any:
        given = x
        for augment in self.augments:
            x = augment(x)
        if self.conditional and labels is None:
            raise TypeError(f"discriminator {self.name!r} is conditional: the loss must call D(x, labels)")
        out = self.D(x, labels) if self.conditional else self.D(x)
        self._record(given, out)
        return out

    def pair(self, real: torch.Tensor, fake: torch.Tensor, real_labels: torch.Tensor | None = None,
             fake_labels: torch.Tensor | None = None) -> tuple[Any, Any]:
        """The scores of ``real`` and of ``fake`` (what :func:`ganzoo.score_pair` calls): with ``joint``, one call
        on the two batches concatenated, its output split back; else one call per batch."""
        if not self.joint or (self.conditional and (real_labels is None or fake_labels is None)):
            return self(real, real_labels), self(fake, fake_labels)
        n = real.shape[0]
        labels = torch.cat([real_labels, fake_labels]) if self.conditional else None  # type: ignore[list-item]
        scores = self(torch.cat([real, fake]), labels)
        if isinstance(scores, (tuple, list)):  # e.g. AC-GAN's (scores, class_logits)
            pair: tuple[Any, Any] = tuple(s[:n] for s in scores), tuple(s[n:] for s in scores)
        else:
            pair = scores[:n], scores[n:]
        self._record(real, pair[0])
        self._record(fake, pair[1])
        return pair


def checked_interval(entry: BuiltExtension) -> int:
    """The extension's :attr:`~ganzoo.Extension.penalty_interval`, refused unless it is a positive integer."""
    interval = getattr(entry.extension, "penalty_interval", 1)
    if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
        raise PluginError(entry.plugin, f"extension {entry.name!r} has penalty_interval {interval!r}; it must be a "
                          "positive integer (1: every discriminator update)", "register_extensions")
    return interval


class Trainer:
    """One GAN training run, built from an :class:`Assembly` and the training images; :meth:`train_step` steps it."""
    def __init__(self, assembly: Assembly, images: torch.Tensor | ImageData, device: torch.device,
                 versions: dict[str, Any], dist_info: DistInfo | None = None, progress: bool = False):
        """``images``: the training split, ``uint8`` ``(N, C, H, W)`` (or an :class:`ImageData`, possibly lazy), held
        in memory or streamed as ``data_loading`` says; ``progress``: a bar while a lazy one is read into memory."""
        cfg: TrainConfig = assembly.config
        self.config, self.assembly, self.device, self.versions = cfg, assembly, device, versions
        self.dist = dist_info or DistInfo()
        self.G, self.D, self.loss, self.step = assembly.generator, assembly.discriminator, assembly.loss, 0
        if isinstance(images, torch.Tensor):
            images = ImageData("tensor", "train", images, None, "ganzoo")
        # Labels reach G, D and the loss only when a network is conditional (num_classes is set); fake labels are then
        # drawn from the dataset's class frequencies by the latent generator (below), so resume and DDP stay exact.
        self.num_classes = assembly.num_classes
        frequencies = images.class_frequencies() if self.num_classes is not None else None
        self.class_probs = frequencies.float().to(device) if frequencies is not None else None
        if self.num_classes is None:  # an unconditional run: batches carry no labels, the loss is given None
            images = dataclasses.replace(images, labels=None)
        self.fast = {switch: fast_paths.enabled(cfg, switch, device.type) for switch in fast_paths.SWITCHES}
        # One global batch per step, the same permutation on every rank; each rank trains on its own slice.
        self.batches = make_batches(images, cfg.batch_size, cfg.seed + 1, device, mode=cfg.data_loading,
                                    workers=cfg.data_workers, memory_limit_gb=cfg.memory_limit_gb,
                                    world_size=self.dist.world_size, rank=self.dist.rank,
                                    channels_last=self.fast["channels_last"], progress=progress and self.dist.is_main)
        self._place_networks()
        self._set_up_extensions()
        self._choose_loss_graphs()
        fused = self.fast["fused_optimizer"]
        self.scheduled = values_at(assembly.schedules, 0, 0)  #: scheduled values at the current step, by config key
        start = with_values(cfg, self.scheduled)  # the optimisers start with each schedule's value at step 0
        self.opt_g = make_optimizer(cfg.optimizer, self.G.parameters(), start.lr_g, start.betas, fused)
        self.opt_d = make_optimizer(cfg.optimizer, self.D.parameters(), start.lr_d, start.betas, fused)
        # latents from a generator of their own (one stream per rank): nothing else that draws shifts them
        self.noise = torch.Generator(device=device).manual_seed(cfg.seed + 2 + 7919 * self.dist.rank)
        self._fix_sample_inputs(images)

    def _place_networks(self) -> None:
        """Memory format, mixed precision, SyncBatchNorm and DDP: each a config switch."""
        cfg, device = self.config, self.device
        if self.fast["channels_last"]:
            self.G.to(memory_format=torch.channels_last)
            self.D.to(memory_format=torch.channels_last)
        if cfg.amp == "fp16" and device.type != "cuda":
            raise ConfigError("amp: fp16 needs a CUDA device; on the CPU use amp=bf16")
        self.autocast_dtype = {"off": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.amp]
        self.scaler_d = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
        self.scaler_g = torch.amp.GradScaler(device.type, enabled=cfg.amp == "fp16")
        if cfg.sync_batchnorm and self.dist.enabled:
            self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        # Forward passes go through G_fwd and D_fwd (DDP-wrapped under torchrun); state_dict() and sampling use the
        # plain modules, and so does the generator step (D_gen_view): no gradient all-reduce for D's frozen weights.
        self.G_fwd, self.D_fwd = self.G, self.D
        if self.dist.enabled:
            ddp_args = {"device_ids": [device.index]} if device.type == "cuda" else {}
            self.G_fwd, self.D_fwd = DDP(self.G, **ddp_args), DDP(self.D, **ddp_args)

    def _set_up_extensions(self) -> None:
        """Set every extension up, in config order, and the views of D that apply their augmentations."""
        assembly = self.assembly
        self.extensions: list[BuiltExtension] = assembly.extensions
        # who acts at each point: every extension is set up; elsewhere do-nothing defaults are skipped, once here
        self.acting = {"setup": list(self.extensions),
                       **{p: [e for e in self.extensions if implements(e.extension, p)] for p in EXTENSION_POINTS}}
        context = ExtensionContext(self.G, self.D, self.config, self.num_classes, tuple(assembly.image_shape),
                                   self.device, self.dist.rank, assembly.conditional_generator,
                                   assembly.conditional_discriminator)
        self._at_extensions("setup", context)
        #: per penalising extension: its interval (lazy regularisation) and the keywords its penalty declared
        self.penalty_intervals = {e.name: checked_interval(e) for p in ("discriminator_penalty", "generator_penalty")
                                  for e in self.acting[p]}
        self.penalty_keywords = {e.name: declared_keywords(e.extension.discriminator_penalty, PENALTY_KEYWORDS)
                                 for e in self.acting["discriminator_penalty"]}
        # what D sees: each extension's augment, then each discriminator_input (PacGAN packing), in config order
        augments = [entry.extension.augment for entry in self.acting["augment"]] + assembly.discriminator_inputs()
        dname = assembly.names["discriminator"]
        #: whether a loss's score_pair scores real and fake in one pass (the discriminator_pass key)
        self.joint_pass = fast_paths.joint_discriminator_pass(self.config, self.D, bool(augments))
        self.D_view, self.D_gen_view = (DiscriminatorView(D, assembly.conditional_discriminator, augments, dname,
                                                          self.joint_pass) for D in (self.D_fwd, self.D))
        self.sampler_name = next((e.name for e in self.acting["sampling_generator"]), None)  # one at most (assembly)

    def _choose_loss_graphs(self) -> None:
        """With compile, the generator's forward is one compiled graph and each loss computation (D and the loss)
        another; a double-backward loss or a discriminator penalty (R1, R2) keeps the discriminator step eager."""
        self.discriminator_loss: Callable[..., torch.Tensor] = self._discriminator_loss
        self.generator_loss: Callable[..., torch.Tensor] = self._generator_loss
        if self.fast["compile"]:
            self.G_fwd = torch.compile(self.G_fwd)
            double = getattr(self.loss, "double_backward", Loss.double_backward)  # a loss need not subclass Loss
            if not (double or self.acting["discriminator_penalty"]):
                self.discriminator_loss = torch.compile(self._discriminator_loss)
            self.generator_loss = torch.compile(self._generator_loss)

    def _fix_sample_inputs(self, images: ImageData) -> None:
        """The fixed latents (and labels) of the sample grids: one row per class for a conditional generator
        (``sample_count // num_classes`` images each); for non-image data, reference points for the scatter."""
        cfg = self.config
        fixed = torch.Generator().manual_seed(cfg.seed + 3)
        self.grid_columns: int | None = None
        self.fixed_labels: torch.Tensor | None = None
        count = cfg.sample_count
        self.reference_points: torch.Tensor | None = None
        if not images.is_image:
            self.reference_points = images.images[:SCATTER_POINTS].cpu()  # type: ignore[index,union-attr]
            count = max(count, SCATTER_POINTS)
        if self.assembly.conditional_generator and self.num_classes:
            self.grid_columns = max(1, cfg.sample_count // self.num_classes)
            self.fixed_labels = torch.arange(self.num_classes).repeat_interleave(self.grid_columns).to(self.device)
            count = len(self.fixed_labels)
        self.fixed_z = torch.randn(count, cfg.latent_dim, generator=fixed).to(self.device)

    def _at_extensions(self, point: str, *args: Any) -> None:
        """Call every extension that implements ``point``, in config order; a failure names its plugin."""
        for name, plugin, ext in self.acting[point]:
            try:
                getattr(ext, point)(*args)
            except Exception as exc:
                raise PluginError(plugin, f"extension {name!r}.{point} raised {type(exc).__name__}: {exc}",
                                  "register_extensions") from exc

    @property
    def sampling_generator(self) -> nn.Module:
        """The network that draws grids, evaluations and exports: an extension's (an EMA), else :attr:`G`."""
        samplers = self.acting["sampling_generator"]
        return samplers[0].extension.sampling_generator() if samplers else self.G

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT, "step": self.step, "critic_position": 0,  # taken between generator steps
            "generator": self.G.state_dict(), "discriminator": self.D.state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(),
            "scaler_d": self.scaler_d.state_dict(), "scaler_g": self.scaler_g.state_dict(),
            "data": self.batches.state_dict(),
            # Per-rank random streams, in rank order (one entry without torchrun).
            "world_size": self.dist.world_size, "noise": gather_objects(self.dist, self.noise.get_state()),
            "rng": gather_objects(self.dist, rng_state()), "config": self.config.model_dump(mode="json"),
            "components": {"names": self.assembly.names, "plugins": self.assembly.plugins,
                           "extensions": {e.name: e.plugin for e in self.extensions},
                           "conditional_generator": self.assembly.conditional_generator,
                           "sampling_generator": self.sampler_name},
            "image_shape": list(self.assembly.image_shape), "versions": self.versions, "num_classes": self.num_classes,
            "extensions": {e.name: e.extension.state_dict() for e in self.extensions},
            # the weights of an extension's sampling generator (an EMA), checkpointed for it by ganzoo
            "sample_generator": self.sampling_generator.state_dict() if self.sampler_name else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore everything :meth:`state_dict` saved; a checkpoint missing any part is refused, never half-used. A
        format-1 checkpoint (the first format) resumes a run without labels and extensions, exactly as before."""
        fmt = state.get("format")
        if fmt not in (1, CHECKPOINT_FORMAT):
            raise CheckpointError(f"checkpoint format {fmt!r} is not one this ganzoo version reads (1 or "
                                  f"{CHECKPOINT_FORMAT}); resume it with the ganzoo version that wrote it")
        missing = [key for key in (STATE_KEYS_FORMAT_1 if fmt == 1 else STATE_KEYS) if key not in state]
        if missing:
            raise CheckpointError(f"checkpoint lacks {', '.join(missing)}; it cannot be resumed exactly")
        if fmt == 1 and (self.extensions or self.num_classes is not None):
            raise CheckpointError("this is a format-1 checkpoint (the first format), written before labels and "
                                  "extensions existed; it resumes only a run without extensions and without "
                                  "conditional networks. Resume it with the config it was written with, or "
                                  "start a new run with --out elsewhere")
        saved_extensions = list(state.get("extensions", {}))
        if fmt != 1 and saved_extensions != [e.name for e in self.extensions]:
            raise CheckpointError(f"checkpoint was written with extensions {saved_extensions or 'none'}, this run has "
                                  f"{[e.name for e in self.extensions] or 'none'}; resume with the checkpoint's config")
        try:
            for part, key in ((self.G, "generator"), (self.D, "discriminator"), (self.opt_g, "opt_g"),
                              (self.opt_d, "opt_d"), (self.scaler_d, "scaler_d"), (self.scaler_g, "scaler_g")):
                part.load_state_dict(state[key])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"the checkpoint's networks or optimisers do not fit this run (were the "
                                  f"components or their options changed?): {str(exc)[:500]}") from None
        if state["world_size"] != self.dist.world_size:
            raise CheckpointError(f"checkpoint was written by {state['world_size']} process(es); resume it with "
                                  f"the same number (now {self.dist.world_size})")
        self.batches.load_state_dict(state["data"])
        self.noise.set_state(state["noise"][self.dist.rank])
        set_rng_state(state["rng"][self.dist.rank])
        for name, plugin, ext in self.extensions:
            try:
                ext.load_state_dict(state["extensions"][name])
            except Exception as exc:
                raise CheckpointError(f"extension {name!r} (plugin {plugin!r}) could not restore its state from "
                                      f"the checkpoint: {type(exc).__name__}: {exc}") from exc
        if self.sampler_name:
            self.sampling_generator.load_state_dict(state["sample_generator"])
        self.step = int(state["step"])

    def _generate(self, G: nn.Module, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        return generate(G, z, labels if self.assembly.conditional_generator else None)

    def _checked(self, value: Any, method: str, plugin: str | None = None, what: str | None = None) -> torch.Tensor:
        """``value`` if it is a scalar tensor (and, for the loss, one with a gradient); else a PluginError."""
        hook = "register_extensions" if plugin else "register_losses"
        plugin = plugin or self.assembly.plugins["loss"]
        what = what or f"loss {self.assembly.names['loss']!r}"
        if not isinstance(value, torch.Tensor) or value.ndim != 0:
            got = f"shape {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
            raise PluginError(plugin, f"{what}.{method} must return a scalar tensor, got {got}", hook)
        if hook == "register_losses" and not value.requires_grad:
            raise PluginError(plugin, f"{what}.{method} returned a tensor without a gradient; compute it from the "
                              "discriminator's outputs (not under torch.no_grad, not detached)", hook)
        return value

    def _loss_keywords(self, method: str, **offered: Any) -> dict[str, Any]:
        """The optional arguments ``method`` of the loss declared (see :class:`ganzoo.Loss`)."""
        return {key: value for key, value in offered.items() if key in self.assembly.loss_keywords.get(method, ())}

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None)

    def _fake_batch(self, graph: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """New latents, their labels (or ``None``) and G's batch for them, with its graph if G's update needs it."""
        cfg = self.config
        z = torch.randn(cfg.batch_size, cfg.latent_dim, device=self.device, generator=self.noise)
        labels = None if self.class_probs is None else draw_labels(self.class_probs, cfg.batch_size, self.noise)
        with torch.set_grad_enabled(graph):
            return z, labels, self._generate(self.G_fwd, z, labels)

    def _discriminator_loss(self, real: torch.Tensor, real_labels: torch.Tensor | None, fake: torch.Tensor,
                            fake_labels: torch.Tensor | None) -> torch.Tensor:
        return self.loss.discriminator_loss(self.D_view, real, fake, **self._loss_keywords(
            "discriminator_loss", real_labels=real_labels, fake_labels=fake_labels))

    def _generator_loss(self, fake: torch.Tensor, fake_labels: torch.Tensor | None, real: torch.Tensor,
                        real_labels: torch.Tensor | None) -> torch.Tensor:
        return self.loss.generator_loss(self.D_gen_view, fake, **self._loss_keywords(
            "generator_loss", real=real, real_labels=real_labels, fake_labels=fake_labels))

    def _penalised(self, loss: torch.Tensor, point: str, step: int, *args: Any, **offered: Any) -> torch.Tensor:
        """``loss`` plus the extensions' ``point`` terms at update ``step``: a penalty with interval k is computed on
        every k-th update only and weighted by k; a discriminator penalty gets the ``offered`` keywords it declared."""
        total = None
        for name, plugin, ext in self.acting[point]:
            interval = self.penalty_intervals[name]
            if step % interval:
                continue
            keywords = {key: offered[key] for key in self.penalty_keywords.get(name, ()) if key in offered}
            term = getattr(ext, point)(*args, step, **keywords)
            if term is not None:
                term = self._checked(term, point, plugin, f"extension {name!r}")
                term = term * interval if interval != 1 else term
                total = term if total is None else total + term
        return loss if total is None else loss + total

    def _apply_schedules(self) -> None:
        """Set every scheduled hyperparameter to its value at this step (:mod:`ganzoo.training.schedules`)."""
        images = self.step * self.config.batch_size * self.config.n_critic * self.dist.world_size
        self.scheduled = values_at(self.assembly.schedules, self.step, images)
        owners = {"loss_options": self.loss, **{f"extensions.{e.name}": e.extension for e in self.extensions}}
        for key, value in self.scheduled.items():
            where, _, name = key.rpartition(".")
            if key in ("lr_g", "lr_d"):
                for group in (self.opt_g if key == "lr_g" else self.opt_d).param_groups:
                    group["lr"] = value
            elif where == "betas":
                for group in (*self.opt_g.param_groups, *self.opt_d.param_groups):
                    if "betas" in group:  # Adam
                        group["betas"] = tuple(value if i == int(name) else b for i, b in enumerate(group["betas"]))
                    elif self.config.optimizer == "sgd" and name == "0":
                        group["momentum"] = value
            else:
                setattr(owners[where], name, value)

    def train_step(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``n_critic`` discriminator updates, then one generator update. With ``generator_batch: reuse`` the generator
        update scores the fake batch of the discriminator update, generated once with its graph; with ``fresh``, a new
        batch from new latents. Extensions act where marked ``[extensions]``, ``augment`` in every ``D_view`` call."""
        cfg = self.config
        reuse = cfg.generator_batch == "reuse"
        self._apply_schedules()  # learning rates, betas, loss and extension options given as schedules
        self.D.requires_grad_(True)
        for i in range(cfg.n_critic):
            d_step = self.step * cfg.n_critic + i
            real, real_labels = self.batches.next()  # this rank's slice of the global batch, labels with it
            with self._autocast():
                z, fake_labels, fake = self._fake_batch(graph=reuse)
                seen = fake.detach()  # the discriminator update's fake batch: no gradient reaches G
                if self.acting["observe_discriminator"]:
                    self.D_view.watch(real, seen)  # record D's outputs on these two batches as the loss scores them
                d_loss = self._checked(self.discriminator_loss(real, real_labels, seen, fake_labels),
                                       "discriminator_loss")
                # [extensions] e.g. R1 on real, R2 on fake, lazily every k updates
                d_loss = self._penalised(d_loss, "discriminator_penalty", d_step, self.D_view, real, real_labels,
                                         fake=seen, fake_labels=fake_labels)
            self.opt_d.zero_grad(set_to_none=True)
            self.scaler_d.scale(d_loss).backward()
            self.scaler_d.step(self.opt_d)
            self.scaler_d.update()
            if self.acting["observe_discriminator"]:  # [extensions] e.g. ADA's r_t from the signs of D(real)
                scores = self.D_view.scores
                self._at_extensions("observe_discriminator", scores.get("real"), scores.get("fake"), d_step)
                self.D_view.watch()
            self._at_extensions("after_discriminator_step", self.D, d_step)  # [extensions] e.g. weight clipping
        self.D.requires_grad_(False)  # the generator step needs gradients through D, not for D's weights
        with self._autocast():
            if not reuse:
                z, fake_labels, fake = self._fake_batch(graph=True)
            g_loss = self._checked(self.generator_loss(fake, fake_labels, real, real_labels), "generator_loss")
            # [extensions] e.g. path length regularisation, lazily every k updates
            g_loss = self._penalised(g_loss, "generator_penalty", self.step, self.G, z, fake_labels)
        self.opt_g.zero_grad(set_to_none=True)
        self.scaler_g.scale(g_loss).backward()
        self.scaler_g.step(self.opt_g)
        self.scaler_g.update()
        self.D.requires_grad_(True)
        self.step += 1
        self._at_extensions("after_generator_step", self.G, self.step)  # [extensions] e.g. EMA
        return d_loss.detach(), g_loss.detach()

    @torch.no_grad()
    def sample(self, z: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [-1, 1] from the sampling generator (an extension's EMA, else G) in eval mode; without ``z``, of
        the fixed grid latents (one row per class for a conditional generator, which needs ``labels`` with ``z``)."""
        if z is None:
            z, labels = self.fixed_z, self.fixed_labels
        if self.assembly.conditional_generator and labels is None:
            raise ValueError("the generator is conditional: pass labels with z")
        G = self.sampling_generator
        was_training = G.training
        G.eval()
        try:
            return self._generate(G, z, labels)
        finally:
            G.train(was_training)

    def save_checkpoint(self, out: Path) -> Path:
        """Write a checkpoint (rank 0 writes; every rank contributes its random states, then waits)."""
        networks = {id(m): m for m in (self.G, self.D, self.sampling_generator)}.values()
        if not all(bool(torch.isfinite(p).all()) for m in networks for p in m.parameters()):
            raise DivergenceError(self.step, "non-finite parameters; refusing to write a checkpoint")
        state = self.state_dict()
        path = out / ckpt.CHECKPOINT_DIR / ckpt.checkpoint_name(self.step)
        if self.dist.is_main:
            path = ckpt.save_checkpoint(out, self.step, state, keep_last=self.config.keep_last)
        barrier(self.dist)
        return path
