"""ensure_dataset against a local HTTP server laid out like NUSTM/ECPE's data_combine/ folder."""
import contextlib
import functools
import http.server
import threading
from pathlib import Path

import pytest

from ecpe.data import download
from ecpe.data.corpus import read_documents
from ecpe.data.download import DownloadError, dataset_files, ensure_dataset

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ecpe-zh"
REMOTE_NAMES = [name for name, _ in dataset_files()]


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):  # keep the test output clean
        pass

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()


@contextlib.contextmanager
def serve(directory: Path):
    """Serve ``directory`` on 127.0.0.1 (a free port); yields (base URL of data_combine/, list of request paths)."""
    handler = type("Handler", (_Handler,), {"requests": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/NUSTM/ECPE/master/data_combine/", handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def tiny_doc(i: int) -> str:
    return f"{i} 2\n (2,1)\n1,null,null,cause words {i}\n2,happiness,happy,emotion words {i}\n"


@pytest.fixture
def synthetic_root(tmp_path):
    """A tiny stand-in for the repository: every data_combine file holds one or two small documents."""
    root = tmp_path / "server"
    folder = root / "NUSTM" / "ECPE" / "master" / "data_combine"
    folder.mkdir(parents=True)
    for k, name in enumerate(REMOTE_NAMES):
        (folder / name).write_text(tiny_doc(k) + tiny_doc(k + 100), encoding="utf-8")
    (folder / "clause_keywords.csv").write_text("not a dataset file\n", encoding="utf-8")  # also in the real repo
    return root


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_download_synthetic(synthetic_root, tmp_path, capsys):
    cache = tmp_path / "cache"
    with serve(synthetic_root) as (url, requests):
        root = ensure_dataset(cache=cache, base_url=url, progress=True)
        assert root == cache / "ecpe-zh"
        assert len(requests) == 21
        for k in range(1, 11):
            for part in ("train", "test"):
                docs = read_documents(root / "split10" / f"fold{k}_{part}.txt")
                assert len(docs) == 2 and docs[0].pairs == [(1, 0)]
        assert len(read_documents(root / "all_data_pair.txt")) == 2
        assert sorted(p.name for p in root.iterdir()) == ["all_data_pair.txt", "split10"]
        assert not leftovers(cache)
        assert url in capsys.readouterr().err  # the user is told where the data comes from

        # complete: a second call downloads nothing; a deleted file is fetched again, alone
        assert ensure_dataset(cache=cache, base_url=url, progress=False) == root
        assert len(requests) == 21
        (root / "split10" / "fold4_test.txt").unlink()
        ensure_dataset(cache=cache, base_url=url.rstrip("/"), progress=False)  # a base without '/' works too
        assert requests[21:] == ["/NUSTM/ECPE/master/data_combine/fold4_test.txt"]


def test_environment_variables(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setenv("ECPE_CACHE", str(tmp_path / "envcache"))
    with serve(synthetic_root) as (url, _):
        monkeypatch.setenv("ECPE_DATA_URL", url)
        root = ensure_dataset(progress=False)
    assert root == tmp_path / "envcache" / "ecpe-zh"
    assert (root / "split10" / "fold10_test.txt").is_file()


def test_404_is_a_clear_error_and_leaves_no_partial_file(synthetic_root, tmp_path):
    (synthetic_root / "NUSTM" / "ECPE" / "master" / "data_combine" / "fold7_test.txt").unlink()
    cache = tmp_path / "cache"
    with serve(synthetic_root) as (url, requests):
        with pytest.raises(DownloadError) as ei:
            ensure_dataset(cache=cache, base_url=url, progress=False)
        assert requests.count("/NUSTM/ECPE/master/data_combine/fold7_test.txt") == 1  # a 404 is not retried
    msg = str(ei.value)
    assert url + "fold7_test.txt" in msg and "404" in msg
    assert "--data" in msg and "$ECPE_DATA" in msg
    assert isinstance(ei.value, FileNotFoundError)  # the CLI reports it as one line
    assert not (cache / "ecpe-zh" / "split10" / "fold7_test.txt").exists()
    assert not leftovers(cache)


def test_a_file_that_does_not_parse_is_not_kept(synthetic_root, tmp_path):
    bad = synthetic_root / "NUSTM" / "ECPE" / "master" / "data_combine" / "all_data_pair.txt"
    bad.write_text("<html>rate limited</html>\n", encoding="utf-8")
    cache = tmp_path / "cache"
    with serve(synthetic_root) as (url, _):
        with pytest.raises(DownloadError, match="all_data_pair.txt") as ei:
            ensure_dataset(cache=cache, base_url=url, progress=False)
    assert "NUSTM format" in str(ei.value) and "--data" in str(ei.value)
    assert not (cache / "ecpe-zh" / "all_data_pair.txt").exists()
    assert not leftovers(cache)


def test_unreachable_server_is_retried(tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sleeps = []
    monkeypatch.setattr(download.time, "sleep", sleeps.append)
    with pytest.raises(DownloadError, match=f"127.0.0.1:{port}/all_data_pair.txt") as ei:
        ensure_dataset(cache=tmp_path, base_url=f"http://127.0.0.1:{port}/", progress=False, retries=3, timeout=5)
    assert len(sleeps) == 2 and "3 attempt" in str(ei.value)
    assert not leftovers(tmp_path)


def test_cli_downloads_into_the_cache(synthetic_root, tmp_path, monkeypatch, capsys):
    from ecpe.cli import main

    monkeypatch.delenv("ECPE_DATA", raising=False)
    monkeypatch.setenv("ECPE_CACHE", str(tmp_path / "cache"))
    with serve(synthetic_root) as (url, _):
        monkeypatch.setenv("ECPE_DATA_URL", url)
        assert main(["stats", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"documents": 2' in out and str(tmp_path / "cache" / "ecpe-zh" / "all_data_pair.txt") in out


@pytest.mark.skipif(not (SHARED / "all_data_pair.txt").exists() or not (SHARED / "split10").is_dir(),
                    reason="shared data not present")
def test_download_from_a_server_of_the_shared_copy(tmp_path):
    folder = tmp_path / "server" / "NUSTM" / "ECPE" / "master" / "data_combine"
    folder.mkdir(parents=True)
    for name, rel in dataset_files():
        (folder / name).symlink_to(SHARED / rel)
    with serve(tmp_path / "server") as (url, _):
        root = ensure_dataset(cache=tmp_path / "cache", base_url=url, progress=False)
    for _, rel in dataset_files():
        assert (root / rel).read_bytes() == (SHARED / rel).read_bytes()
    assert len(read_documents(root / "all_data_pair.txt")) == 1945
    assert len(read_documents(root / "split10" / "fold1_test.txt")) == 195
