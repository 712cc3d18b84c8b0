"""``discriminator_pass`` and ``ganzoo.score_pair``: a loss scores a real and a fake batch in one pass of the
discriminator (the two batches concatenated) where that gives the same scores, else in two."""

from __future__ import annotations

import pytest
import torch
from conftest import QUICK, make_trainer

import ganzoo
from ganzoo.training.trainer import DiscriminatorView, Trainer


class Recording(torch.nn.Module):
    """D(x, labels) = 2 * x.sum over pixels + labels (as floats); records the batch size of every call."""

    def __init__(self, classifier: bool = False) -> None:
        super().__init__()
        self.calls: list[int] = []
        self.classifier = classifier

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None):
        self.calls.append(x.shape[0])
        scores = 2 * x.flatten(1).sum(1) + (labels.float() if labels is not None else 0)
        return (scores, -scores) if self.classifier else scores


REAL, FAKE = torch.ones(3, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5)  # scores 8 each; 4 each (before labels)


def test_score_pair_on_a_plain_callable_calls_it_twice() -> None:
    D = Recording()
    d_real, d_fake = ganzoo.score_pair(D, REAL, FAKE)
    assert D.calls == [3, 2]
    assert d_real.tolist() == [8.0, 8.0, 8.0] and d_fake.tolist() == [4.0, 4.0]
    d_real, _ = ganzoo.score_pair(lambda x: x.flatten(1).sum(1), REAL, FAKE)  # a D(x) without labels
    assert d_real.tolist() == [4.0, 4.0, 4.0]


@pytest.mark.parametrize(("joint", "calls"), [(True, [5]), (False, [3, 2])])
def test_view_scores_both_batches_in_one_call_when_joint(joint: bool, calls: list[int]) -> None:
    D = Recording()
    view = DiscriminatorView(D, conditional=True, augments=[], name="recording", joint=joint)
    d_real, d_fake = ganzoo.score_pair(view, REAL, FAKE, torch.tensor([0, 1, 2]), torch.tensor([5, 6]))
    assert D.calls == calls
    assert d_real.tolist() == [8.0, 9.0, 10.0] and d_fake.tolist() == [9.0, 10.0]  # labels kept with their images


def test_joint_pass_splits_tuple_outputs() -> None:
    view = DiscriminatorView(Recording(classifier=True), conditional=False, augments=[], name="r", joint=True)
    (s_real, c_real), (s_fake, c_fake) = ganzoo.score_pair(view, REAL, FAKE)
    assert s_real.tolist() == [8.0] * 3 and c_real.tolist() == [-8.0] * 3
    assert s_fake.tolist() == [4.0] * 2 and c_fake.tolist() == [-4.0] * 2


def trainer(variant: str, **overrides) -> Trainer:
    return make_trainer(variant, steps=2, **overrides)


SMALL_DCGAN = {"generator_options": {"width": 4}, "discriminator_options": {"width": 4}}


@pytest.mark.parametrize(("variant", "overrides", "joint"), [
    ("vanilla", {}, True),  # Linear and LeakyReLU only
    ("wgan-gp", SMALL_DCGAN, True),  # GroupNorm: per sample, no buffers
    ("dcgan", SMALL_DCGAN, False),  # BatchNorm: statistics over the batch
    ("sngan", SMALL_DCGAN, False),  # spectral norm: a power iteration per pass
    ("vanilla", {"discriminator_pass": "separate"}, False),
    ("dcgan", {**SMALL_DCGAN, "discriminator_pass": "joint"}, True),  # asked for: BatchNorm sees both batches
    ("vanilla", {"extensions": {"diffaugment": {}}}, False),  # an augmentation may act across the batch
])
def test_auto_is_joint_only_where_scores_are_unchanged(variant: str, overrides: dict, joint: bool) -> None:
    assert trainer(variant, **overrides).joint_pass is joint


def test_joint_step_matches_separate_step() -> None:
    """vanilla, two steps each way from the same seed: one discriminator call per update instead of two, and the
    same weights (to float rounding: a product over 2B rows may sum in another order than two over B)."""
    runs = {}
    for mode in ("joint", "separate"):
        t = trainer("vanilla", discriminator_pass=mode)
        calls: list[int] = []
        t.D.register_forward_hook(lambda _m, args, _out, calls=calls: calls.append(args[0].shape[0]))
        for _ in range(2):
            t.train_step()
        runs[mode] = (t, calls)
    bs = QUICK["batch_size"]
    assert runs["joint"][1] == [2 * bs, bs] * 2  # D update: real and fake together; G update: fake
    assert runs["separate"][1] == [bs, bs, bs] * 2
    joint, separate = runs["joint"][0], runs["separate"][0]
    for a, b in zip([*joint.G.parameters(), *joint.D.parameters()], [*separate.G.parameters(),
                                                                        *separate.D.parameters()], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
