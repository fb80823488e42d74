"""fetch(): cache folder, registry, and the message when offline. Never uses the network."""

import pooch
import pytest

from dlmi_utils.data import REGISTRY, DownloadError, data_dir, fetch, load_mini_mias


def test_data_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("DLMI_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.delenv("DLMI_DATA_DIR")
    assert data_dir() == pooch.os_cache("dlmi-labs")


def test_registry_entries_are_complete():
    for name, entry in REGISTRY.items():
        assert entry.url.startswith(("http://", "https://")), name
        assert entry.known_hash is None or entry.known_hash.startswith("sha256:"), name
        assert entry.fname and entry.description and entry.size


def test_offline_download_says_what_to_do_by_hand(monkeypatch, tmp_path):
    monkeypatch.setenv("DLMI_DATA_DIR", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(DownloadError) as info:
        fetch("mini-mias")
    message = str(info.value)
    assert REGISTRY["mini-mias"].url in message
    assert str(tmp_path) in message and "by hand" in message and "no network" in message.lower()
    with pytest.raises(DownloadError):
        load_mini_mias()


def test_fetch_calls_pooch_with_the_registry_and_unpacks(monkeypatch, tmp_path):
    monkeypatch.setenv("DLMI_DATA_DIR", str(tmp_path))
    calls = []

    def fake_retrieve(url, known_hash=None, fname=None, path=None, processor=None, **kw):
        calls.append((url, known_hash, fname, path, processor))
        out = tmp_path / "mini-mias"
        out.mkdir()
        (out / "Info.txt").write_text("mdb001 G NORM\n")
        return [str(out / "Info.txt")]

    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    out = fetch("mini-mias")
    assert out == tmp_path / "mini-mias"
    url, known_hash, fname, path, processor = calls[0]
    entry = REGISTRY["mini-mias"]
    assert (url, known_hash, fname, path) == (entry.url, entry.known_hash, entry.fname, tmp_path)
    assert isinstance(processor, pooch.Untar)
    fetch("mini-mias")  # already unpacked: no second download
    assert len(calls) == 1


def test_unknown_data_set_is_refused():
    with pytest.raises(ValueError, match="mini-mias"):
        fetch("imagenet")
