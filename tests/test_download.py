"""download() against a loopback HTTP server; extract() against hostile archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile

import numpy as np
import pytest
from httpserver import FixtureServer, closed_port_url

from genrelab.download import DownloadError, ExtractError, download, extract, file_digest, verify_checksum

DATA = np.random.default_rng(0).integers(0, 256, size=300_000, dtype=np.uint8).tobytes()
SHA1 = hashlib.sha1(DATA).hexdigest()
MD5 = hashlib.md5(DATA).hexdigest()


def test_complete_download_then_skip(tmp_path):
    dest = tmp_path / "sub" / "archive.zip"
    with FixtureServer({"/a.zip": DATA}) as srv:
        out = download([srv.url("/a.zip")], dest, sha1=SHA1, progress=False)
        assert out == dest and dest.read_bytes() == DATA
        assert not (tmp_path / "sub" / "archive.zip.part").exists()
        assert [r.status for r in srv.requests] == [200]
        # present with a good checksum: no network access at all
        download([srv.url("/a.zip")], dest, sha1=SHA1, md5=MD5, progress=False)
        assert len(srv.requests) == 1


def test_dropped_connection_resumes_with_range(tmp_path):
    dest = tmp_path / "a.tar.gz"
    with FixtureServer({"/a": DATA}, drop_after={"/a": 100_000}) as srv:
        download([srv.url("/a")], dest, md5=MD5, progress=False)
        assert dest.read_bytes() == DATA
        assert [(r.range, r.status) for r in srv.requests] == [(None, 200), ("bytes=100000-", 206)]


def test_partial_file_from_killed_run_is_resumed(tmp_path):
    dest = tmp_path / "a.bin"
    (tmp_path / "a.bin.part").write_bytes(DATA[:1234])
    with FixtureServer({"/a": DATA}) as srv:
        download(srv.url("/a"), dest, sha1=SHA1, progress=False)
        assert [(r.range, r.status) for r in srv.requests] == [("bytes=1234-", 206)]
    assert dest.read_bytes() == DATA


def test_server_ignoring_range_restarts(tmp_path):
    dest = tmp_path / "a.bin"
    (tmp_path / "a.bin.part").write_bytes(b"stale bytes from another file")
    with FixtureServer({"/a": DATA}, ignore_range={"/a"}) as srv:
        download([srv.url("/a")], dest, sha1=SHA1, progress=False)
        assert [r.status for r in srv.requests] == [200]
    assert dest.read_bytes() == DATA


def test_checksum_mismatch_names_both_and_deletes_part(tmp_path):
    dest = tmp_path / "a.bin"
    wrong = "0" * 40
    with FixtureServer({"/a": DATA}) as srv, pytest.raises(DownloadError) as err:
        download([srv.url("/a")], dest, sha1=wrong, progress=False)
    msg = str(err.value)
    assert wrong in msg and SHA1 in msg and "mismatch" in msg
    assert not dest.exists() and not (tmp_path / "a.bin.part").exists()


def test_404_lists_urls_and_where_to_put_the_file(tmp_path):
    dest = tmp_path / "fma_metadata.zip"
    with FixtureServer({}) as srv, pytest.raises(DownloadError) as err:
        download([srv.url("/x/one.zip"), srv.url("/y/two.zip")], dest, sha1=SHA1, progress=False)
    msg = str(err.value)
    assert srv.url("/x/one.zip") in msg and srv.url("/y/two.zip") in msg and "404" in msg
    assert str(dest.resolve()) in msg and SHA1 in msg


def test_unreachable_host_says_where_to_put_the_file(tmp_path):
    dest = tmp_path / "genres.tar.gz"
    url = closed_port_url("/sound/genres.tar.gz")
    with pytest.raises(DownloadError) as err:
        download([url], dest, md5=MD5, progress=False, timeout=5)
    msg = str(err.value)
    assert url in msg and "unreachable" in msg
    assert "place the file at" in msg and str(dest.resolve()) in msg and MD5 in msg


def test_falls_back_to_next_mirror_and_replaces_bad_existing(tmp_path):
    dest = tmp_path / "a.bin"
    dest.write_bytes(b"corrupt copy")
    with FixtureServer({"/good": DATA}) as srv:
        download([closed_port_url(), srv.url("/missing"), srv.url("/good")], dest, sha1=SHA1, progress=False)
    assert dest.read_bytes() == DATA


def test_invalid_arguments(tmp_path):
    with pytest.raises(ValueError, match="40 hexadecimal"):
        download(["http://127.0.0.1:9/x"], tmp_path / "x", sha1="abc")
    with pytest.raises(ValueError, match="unknown checksum algorithm"):
        file_digest(tmp_path, "crc32")
    with pytest.raises(DownloadError, match="no URL was given"):
        download([], tmp_path / "x", sha1=SHA1, progress=False)


def test_verify_checksum(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(DATA)
    assert verify_checksum(p, sha1=SHA1, md5=MD5) == p
    with pytest.raises(DownloadError, match="expected 0{32}, got " + MD5):
        verify_checksum(p, md5="0" * 32)


# -------------------------------------------------------------------------- extract
def _zip(path, entries: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _tar(path, entries: list[tarfile.TarInfo], mode="w:gz"):
    with tarfile.open(path, mode) as tf:
        for info in entries:
            data = b"x" * info.size if info.isfile() else None
            tf.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name, size=3):
    info = tarfile.TarInfo(name)
    info.size = size
    return info


def _link(name, target, kind):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def test_extract_zip_and_tar_atomically_and_idempotently(tmp_path):
    z = _zip(tmp_path / "a.zip", {"top/x.txt": b"hello", "top/sub/y.txt": b"yy"})
    out = extract(z, tmp_path / "out_zip", progress=False)
    assert (out / "top" / "x.txt").read_bytes() == b"hello"
    (out / "top" / "x.txt").write_bytes(b"edited")
    extract(z, tmp_path / "out_zip", progress=False)  # same archive: nothing re-extracted
    assert (out / "top" / "x.txt").read_bytes() == b"edited"

    t = _tar(tmp_path / "a.tgz", [_file("genres/a.au"), _link("genres/l.au", "a.au", tarfile.SYMTYPE)])
    out = extract(t, tmp_path / "out_tar", progress=False)
    assert (out / "genres" / "a.au").read_bytes() == b"xxx"
    assert not list(tmp_path.glob(".out_*"))  # no temporary folder left behind


@pytest.mark.parametrize("name", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil.txt"])
def test_extract_refuses_zip_slip(tmp_path, name):
    z = _zip(tmp_path / "bad.zip", {"fine.txt": b"1", name: b"pwned"})
    with pytest.raises(ExtractError, match="refusing entry"):
        extract(z, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    "entry",
    [
        _file("../evil.txt"),
        _file("/etc/evil.txt"),
        _link("genres/l", "../../outside", tarfile.SYMTYPE),
        _link("genres/l", "/etc/passwd", tarfile.SYMTYPE),
        _link("genres/h", "../outside", tarfile.LNKTYPE),
    ],
    ids=["dotdot", "absolute", "symlink-out", "symlink-abs", "hardlink-out"],
)
def test_extract_refuses_tar_traversal(tmp_path, entry):
    t = _tar(tmp_path / "bad.tar.gz", [_file("genres/ok.au"), entry])
    with pytest.raises(ExtractError, match="refusing"):
        extract(t, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_extract_invalid_inputs(tmp_path):
    with pytest.raises(FileNotFoundError):
        extract(tmp_path / "missing.zip", tmp_path / "out")
    (tmp_path / "a.rar").write_bytes(b"x")
    with pytest.raises(ExtractError, match="unknown archive type"):
        extract(tmp_path / "a.rar", tmp_path / "out")
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(ExtractError, match="cannot read"):
        extract(tmp_path / "broken.zip", tmp_path / "out", progress=False)
    z = _zip(tmp_path / "a.zip", {"x": b"1"})
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "mine.txt").write_text("keep")
    with pytest.raises(ExtractError, match="not made by extract"):
        extract(z, tmp_path / "user", progress=False)
    assert (tmp_path / "user" / "mine.txt").read_text() == "keep"
