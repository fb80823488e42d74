"""mini-MIAS: the Info.txt table and binary PGMs, in their real formats, made in tmp_path."""

import numpy as np
import pytest

from dlmi_utils.data import load_mini_mias, parse_mias_info, read_pgm

INFO = """REFNUM BG CLASS SEVERITY X Y RADIUS
mdb001 G CIRC B 535 425 197
mdb002 G CIRC B 522 280 69
mdb003 D NORM
mdb004 D NORM
mdb005 F CIRC B 477 133 30
mdb005 F CIRC B 500 168 26
mdb006 F NORM
mdb007 G NORM
mdb008 G NORM
mdb009 F NORM
mdb010 F CALC M
"""


def _write_pgm(path, pixels):
    h, w = pixels.shape
    path.write_bytes(b"P5\n%d %d\n255\n" % (w, h) + pixels.astype(np.uint8).tobytes())


@pytest.fixture
def mias_dir(tmp_path):
    folder = tmp_path / "mini-mias" / "all-mias"
    folder.mkdir(parents=True)
    (folder / "Info.txt").write_text(INFO)
    rng = np.random.default_rng(0)
    for n in range(1, 11):
        _write_pgm(folder / f"mdb{n:03d}.pgm", rng.integers(0, 256, (1024, 1024)))
    return tmp_path


def test_info_table_is_parsed_with_its_quirks(mias_dir):
    records = parse_mias_info(mias_dir / "mini-mias" / "all-mias" / "Info.txt")
    assert list(records) == [f"mdb{n:03d}" for n in range(1, 11)]
    first = records["mdb001"].abnormalities[0]
    assert (first.kind, first.severity, first.x, first.y, first.radius) == (
        "CIRC", "B", 535, 425, 197)
    assert (first.row, first.col) == (1023 - 425, 535)  # origin at the bottom-left corner
    assert len(records["mdb005"].abnormalities) == 2
    assert records["mdb003"].abnormalities == [] and records["mdb003"].label == "normal"
    calc = records["mdb010"].abnormalities[0]
    assert calc.severity == "M" and calc.x is None and calc.row is None
    assert records["mdb010"].label == "malignant"
    assert records["mdb001"].patient == records["mdb002"].patient == 0


def test_pgm_is_read_exactly(tmp_path):
    pixels = np.arange(12 * 7).reshape(12, 7) % 256
    _write_pgm(tmp_path / "a.pgm", pixels)
    np.testing.assert_array_equal(read_pgm(tmp_path / "a.pgm"), pixels)
    (tmp_path / "b.pgm").write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match="not a PGM"):
        read_pgm(tmp_path / "b.pgm")


def test_load_from_a_folder_splits_by_patient(mias_dir):
    films = load_mini_mias(root=mias_dir)
    assert len(films) == 10
    assert films[0].image.shape == (1024, 1024) and films[0].image.dtype == np.float32
    assert 0.0 <= films[0].image.min() and films[0].image.max() <= 1.0
    test = load_mini_mias("test", root=mias_dir)
    train = load_mini_mias("train", root=mias_dir)
    assert [f.record.ref for f in test] == ["mdb009", "mdb010"]  # patient 4
    assert not {f.record.patient for f in test} & {f.record.patient for f in train}
    assert len(test) + len(train) == 10


def test_data_dir_copy_is_used_without_download(mias_dir, monkeypatch):
    monkeypatch.setenv("DLMI_DATA_DIR", str(mias_dir))
    films = load_mini_mias(refs=["mdb005"], download=False)
    assert len(films) == 1 and len(films[0].record.abnormalities) == 2


def test_missing_data_and_bad_rows_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("DLMI_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mini_mias(download=False)
    bad = tmp_path / "Info.txt"
    bad.write_text("mdb001 X BLOB\n")
    with pytest.raises(ValueError, match="line 1"):
        parse_mias_info(bad)
    with pytest.raises(FileNotFoundError, match="mdb001.pgm"):
        bad.write_text("mdb001 G NORM\n")
        load_mini_mias(root=tmp_path)
