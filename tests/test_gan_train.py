import pytest
import torch

from dlmi_utils.gan.data import ImageSampler
from dlmi_utils.gan.models import Discriminator, Generator
from dlmi_utils.gan.training import generate, train_gan


def _toy_sampler(level=0.5):
    """Flat images at ``level`` with a little noise: a GAN must learn their brightness."""
    g = torch.Generator().manual_seed(0)
    return ImageSampler(level + 0.05 * torch.randn(64, 1, 32, 32, generator=g), flip=False)


def _nets(seed=0, norm="batch"):
    torch.manual_seed(seed)
    return Generator(nz=8, ngf=4, size=32), Discriminator(ndf=4, size=32, norm=norm)


def test_history_and_snapshots():
    g, d = _nets()
    ema, history = train_gan(g, d, _toy_sampler(), steps=6, batch_size=4, sample_every=3,
                             n_snapshot=5, device="cpu", progress=False)
    assert len(history.d_loss) == len(history.g_loss) == 6
    assert [s for s, _ in history.snapshots] == [3, 6]
    assert history.snapshots[0][1].shape == (5, 1, 32, 32)
    assert set(history.curves()) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert not ema.model.training


def test_on_snapshot_sees_the_ema_generator_and_leaves_the_run_unchanged():
    seen = []

    def score(step, g):
        seen.append((step, g.training, generate(g, 2, seed=0)))

    runs, finals = [], []
    for callback in (score, None):
        g, d = _nets()
        ema, _ = train_gan(g, d, _toy_sampler(), steps=4, batch_size=4, sample_every=2,
                           device="cpu", progress=False, on_snapshot=callback)
        runs.append(torch.cat([p.flatten() for p in ema.model.parameters()]))
        finals.append(generate(ema.model, 2, seed=0))
    assert [s for s, *_ in seen] == [2, 4]
    assert not any(training for _, training, _ in seen)
    assert torch.equal(seen[-1][2], finals[0])  # the last call saw the final moving average
    assert torch.equal(runs[0], runs[1])  # scoring inside the loop does not change training


def test_same_seed_same_weights():
    runs = []
    for _ in range(2):
        g, d = _nets()
        train_gan(g, d, _toy_sampler(), steps=3, batch_size=4, device="cpu", progress=False)
        runs.append(torch.cat([p.flatten() for p in g.parameters()]))
    assert torch.equal(runs[0], runs[1])


def test_wgan_gp_with_several_critic_steps_runs():
    g, d = _nets(norm="layer")
    _, history = train_gan(g, d, _toy_sampler(), steps=2, n_critic=3, batch_size=4,
                           loss="wgan-gp", betas=(0.0, 0.9), device="cpu", progress=False)
    assert len(history.d_loss) == 2 and all(map(torch.isfinite, torch.tensor(history.d_loss)))


@pytest.mark.parametrize("loss", ["ns", "wgan-gp"])
def test_generator_learns_the_brightness_of_flat_images(loss):
    g, d = _nets(norm="layer" if loss == "wgan-gp" else "none")
    before = generate(g, 64).mean().item()
    train_gan(g, d, _toy_sampler(0.5), steps=100, batch_size=16, loss=loss, device="cpu",
              progress=False, lr_g=1e-3, lr_d=1e-3, betas=(0.5, 0.9))
    after = generate(g, 64).mean().item()
    assert abs(before - 0.5) > 0.3 and abs(after - 0.5) < 0.15, (before, after)


def test_generate_is_seeded_and_keeps_the_mode():
    g, _ = _nets()
    g.train()
    a, b = generate(g, 5, seed=2), generate(g, 5, seed=2)
    assert torch.equal(a, b) and a.shape == (5, 1, 32, 32) and g.training


def test_bad_arguments_raise():
    g, d = _nets()
    with pytest.raises(ValueError, match="loss"):
        train_gan(g, d, _toy_sampler(), steps=1, loss="hinge", progress=False)
    with pytest.raises(ValueError, match="positive"):
        train_gan(g, d, _toy_sampler(), steps=0, progress=False)
