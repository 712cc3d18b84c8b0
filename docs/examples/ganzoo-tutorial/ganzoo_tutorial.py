"""A conditional MLP generator and an instance-noise extension: the plugin built in docs/plugins.md."""

from __future__ import annotations

import math

import torch
from torch import nn

from ganzoo import Extension, ExtensionSpec, Generator, Variant, hookimpl


class ConditionalMLP(nn.Module):
    """(z, y) -> image: the class embedding is concatenated to the latent vector."""

    def __init__(self, latent_dim, image_shape, num_classes, hidden=256):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.embed = nn.Embedding(num_classes, 16)
        self.net = nn.Sequential(nn.Linear(latent_dim + 16, hidden), nn.LeakyReLU(0.2),
                                 nn.Linear(hidden, math.prod(image_shape)), nn.Tanh())

    def forward(self, z, y):
        return self.net(torch.cat([z, self.embed(y)], dim=1)).view(z.shape[0], *self.image_shape)


class InstanceNoise(Extension):
    """Gaussian noise on everything D sees, its std annealed linearly to 0 (Sønderby et al. 2016)."""

    def __init__(self, std=0.1, anneal_steps=1000):
        if std < 0 or anneal_steps < 1:
            raise ValueError("std must be >= 0 and anneal_steps >= 1")
        self.std, self.anneal_steps = float(std), int(anneal_steps)
        self.step = 0

    def setup(self, context):
        # its own random stream, seeded per run and rank, saved with the checkpoint
        self.noise = torch.Generator(device=context.device)
        self.noise.manual_seed(context.config.seed * 7 + 1 + context.rank)

    def augment(self, images):
        std = self.std * max(0.0, 1.0 - self.step / self.anneal_steps)
        noise = torch.randn(images.shape, generator=self.noise, device=images.device, dtype=images.dtype)
        return images + std * noise

    def after_generator_step(self, G, step):
        self.step = step

    def state_dict(self):
        return {"step": self.step, "noise": self.noise.get_state()}

    def load_state_dict(self, state):
        self.step = state["step"]
        self.noise.set_state(state["noise"])


@hookimpl
def register_generators(register):
    register(Generator("cond-mlp", ConditionalMLP, "MLP generator with a class embedding", conditional=True))


@hookimpl
def register_extensions(register):
    register(ExtensionSpec("instance-noise", InstanceNoise, "Annealed Gaussian noise on D's inputs",
                           paper="Sønderby et al. 2016, Amortised MAP Inference for Image Super-resolution"))


@hookimpl
def register_variants(register):
    register(Variant("cond-mlp-gan", generator="cond-mlp", discriminator="projection", loss="hinge",
                     defaults={"extensions": {"instance-noise": {"std": 0.1}}, "batch_size": 64},
                     description="Conditional MLP generator, projection discriminator, instance noise"))
