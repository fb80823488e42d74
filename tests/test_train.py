import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dlmi_utils.mri.datasets import recon_step
from dlmi_utils.train import (
    evaluate,
    fit,
    load_checkpoint,
    pair_step,
    save_checkpoint,
)


def _denoising_data(n=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, 1, 16, 16, generator=g)
    noisy = clean + 0.1 * torch.randn(n, 1, 16, 16, generator=g)
    return TensorDataset(noisy, clean)


def _loader(ds, seed=0):
    return DataLoader(ds, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(seed))


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 1, 3, padding=1)
    )


def _run(epochs=2, **kw):
    model = _model()
    history = fit(model, _loader(_denoising_data()), _loader(_denoising_data(seed=1)),
                  epochs=epochs, lr=1e-2, device="cpu", progress=False, log=None, **kw)
    return model, history


def test_fit_is_deterministic_with_a_seed():
    (m1, h1), (m2, h2) = _run(), _run()
    assert h1.train_loss == h2.train_loss
    for a, b in zip(m1.state_dict().values(), m2.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_fit_lowers_the_loss_and_records_validation_scores():
    _, history = _run(epochs=6)
    assert history.train_loss[-1] < history.train_loss[0]
    assert len(history.val_psnr) == len(history.val_ssim) == 6
    assert history.val_psnr[-1] > history.val_psnr[0]
    assert history.seconds > 0


def test_resume_from_checkpoint_equals_one_straight_run(tmp_path):
    def run(model, epochs, **kw):
        fit(model, _loader(_denoising_data()), epochs=epochs, lr=1e-2, device="cpu",
            progress=False, log=None, **kw)

    # a constant learning rate, so that 2 + 2 epochs follow the same path as 4
    ckpt = tmp_path / "ckpt.pt"
    resumed = _model()
    run(resumed, 2, checkpoint=ckpt, cosine=False)
    epochs_before = load_checkpoint(ckpt, _model())[0]
    interrupted = _model(seed=3)  # a fresh process: only the checkpoint carries the state
    run(interrupted, 4, checkpoint=ckpt, resume=True, cosine=False)
    straight = _model()
    run(straight, 4, cosine=False)
    assert epochs_before == 2
    for x, y in zip(interrupted.state_dict().values(), straight.state_dict().values(), strict=True):
        torch.testing.assert_close(x, y)


def test_checkpoint_round_trip(tmp_path):
    model, history = _run(epochs=1)
    path = save_checkpoint(tmp_path / "c.pt", model, epoch=1, history=history)
    other = _model(seed=5)
    epoch, restored = load_checkpoint(path, other)
    assert epoch == 1 and restored.train_loss == history.train_loss
    for a, b in zip(model.state_dict().values(), other.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)


def test_evaluate_scores_identity_as_noisy_input_psnr():
    ds = _denoising_data()
    scores = evaluate(torch.nn.Identity(), DataLoader(ds, batch_size=5), pair_step, "cpu",
                      data_range=1.0)
    noisy, clean = ds.tensors
    expected = 10 * torch.log10(1 / ((noisy - clean) ** 2).mean(dim=(1, 2, 3))).mean()
    assert scores["n"] == 12
    assert scores["psnr"] == pytest.approx(expected.item(), abs=1e-4)


def test_steps_give_clear_errors_on_wrong_batches():
    with pytest.raises(TypeError, match="input, target"):
        pair_step(torch.nn.Identity(), torch.zeros(3), "cpu")
    with pytest.raises(KeyError, match="lacks"):
        recon_step(torch.nn.Identity(), {"x_u": torch.zeros(1)}, "cpu")


def test_fit_validation_psnr_uses_the_given_peak():
    """``data_range=1.0`` scores [0, 1] images against the peak 1, not each crop's maximum."""
    ds = _denoising_data()
    val = DataLoader(ds, batch_size=5)
    noisy, clean = ds.tensors
    peak_1 = 10 * torch.log10(1 / ((noisy - clean) ** 2).mean(dim=(1, 2, 3))).mean().item()
    for data_range in (None, 1.0):
        model = torch.nn.Conv2d(1, 1, 1, bias=False)
        torch.nn.init.ones_(model.weight)  # the identity: a zero learning rate keeps it
        history = fit(model, _loader(ds), val, epochs=1, lr=0.0, device="cpu",
                      progress=False, log=None, data_range=data_range)
        expected = evaluate(torch.nn.Identity(), val, pair_step, "cpu", data_range=data_range)
        assert history.val_psnr[0] == pytest.approx(expected["psnr"], abs=1e-6)
        assert (history.val_psnr[0] == pytest.approx(peak_1, abs=1e-4)) == (data_range == 1.0)


def test_fit_trains_on_the_loss_a_loss_step_returns():
    """A loss_step (SURE: the model called twice, no target) replaces step + loss_fn for
    training; validation still scores step's predictions."""
    calls = []

    def loss_step(model, batch, device):
        noisy, _ = (t.to(device) for t in batch)
        calls.append(1)
        return (model(noisy) - noisy).pow(2).mean() + model(noisy).abs().mean()

    model, history = _run(loss_step=loss_step)
    assert len(calls) == 2 * 3  # 12 images, batches of 4, 2 epochs
    assert len(history.val_psnr) == 2
    baseline, _ = _run()
    assert not all(torch.equal(a, b) for a, b in
                   zip(model.state_dict().values(), baseline.state_dict().values(),
                       strict=True))
