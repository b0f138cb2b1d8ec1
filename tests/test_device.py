"""Devices: the CPU by default, a GPU on request (--device). The GPU tests run only where PyTorch sees one;
the rest check the plumbing and the errors on any machine."""
from __future__ import annotations

import platform
import sys

import pytest
import torch

from ecpe.cli import main
from ecpe.config import TrainConfig
from ecpe.data import Vocab
from ecpe.data.batching import batch_to
from ecpe import devices
from ecpe.devices import model_device, native_bf16, resolve_device, resolve_precision, retain_freed_memory
from ecpe.models import build_model, load_model, save_model
from ecpe.models.two_stage import CandidateTensors
from ecpe.metrics import Prediction
from ecpe.inference import predict
from ecpe.training import Trainer

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU that PyTorch can use")

TWO_STAGE_TINY = {"embed_dim": 16, "hidden": 8, "pos_dim": 4}


def test_resolve_device_names(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="--device cpu"):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device|unsupported device"):
        resolve_device("gpu0")
    with pytest.raises(ValueError, match="unsupported device"):
        resolve_device("meta")


def test_batch_to_moves_every_tensor_and_keeps_the_rest(corpus, tiny_config):
    model = build_model("e2eecpe", Vocab.build(c for d in corpus for c in d.clauses), {**tiny_config, "char_backoff": True})
    batch = model.tensorize(corpus[:5]).batch([0, 1, 2])
    assert batch.to("cpu") is batch  # already there: no copy
    moved = batch_to(batch, "meta")  # a device without data: checks the plumbing on any machine
    tensors = [f for f, v in vars(moved).items() if isinstance(v, torch.Tensor)]
    assert {"flat_words", "clause_pos", "mask", "pairs", "unknown_chars"} <= set(tensors)
    assert all(getattr(moved, f).device.type == "meta" for f in tensors)
    assert moved.index == batch.index and batch.words.device.type == "cpu"  # the original is untouched


def test_pair_batch_to(corpus):
    model = build_model("inter-ec", Vocab.build(c for d in corpus for c in d.clauses), TWO_STAGE_TINY)
    t = model.tensorize(corpus[:4])
    cands = CandidateTensors(t, [Prediction(emotions=sorted(d.emotions), causes=sorted(d.causes)) for d in corpus[:4]])
    pb = cands.batch(range(len(cands)))
    moved = pb.to("meta")
    assert moved.words.device.type == "meta" and moved.label.device.type == "meta" and moved.index == pb.index


def test_train_with_missing_gpu_fails_before_training(tmp_path, corpus, split_writer, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--device", "cuda", "--epochs", "1", "-q"])
    err = capsys.readouterr().err
    assert rc == 2 and "device 'cuda' asked for" in err and "--device cpu" in err
    assert not (tmp_path / "run" / "fold1").exists()


def test_predict_with_missing_gpu_is_a_one_line_error(tmp_path, corpus, tiny_config, monkeypatch, capsys):
    model = build_model("e2eecpe", Vocab.build(c for d in corpus for c in d.clauses), tiny_config)
    path = save_model(model, tmp_path / "m.pt", {"segmenter": "jieba"})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["predict", "--model", str(path), "--device", "cuda", "今天很高兴"])
    assert rc == 2 and "asked for" in capsys.readouterr().err


def test_record_names_the_device(tmp_path, corpus, split_writer):
    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    rc = main(["train", "--data", str(split), "--out", str(tmp_path / "run"), "--epochs", "1", "--embed-dim", "16", "-q"])
    assert rc == 0
    import json

    res = json.loads((tmp_path / "run" / "fold1" / "result.json").read_text())
    assert res["environment"]["device"] == "cpu"
    summary = json.loads((tmp_path / "run" / "results.json").read_text())
    assert summary["config"]["train"]["device"] == "cpu"


def test_precision_auto_follows_the_cpu(monkeypatch):
    assert resolve_precision("fp32") == "fp32" and resolve_precision("bf16") == "bf16"
    with pytest.raises(ValueError, match="unknown precision 'fp16'"):
        resolve_precision("fp16")
    for amx, avx in ((True, False), (False, True), (False, False)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx, raising=False)
        assert native_bf16("cpu") is (amx or avx)
        assert resolve_precision("auto", "cpu") == ("bf16" if amx or avx else "fp32")
    # a torch without the probes: the kernel's CPU flags decide
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    for flags, expected in (({"avx512f", "avx512_bf16"}, True), ({"avx512f", "amx_bf16"}, True), ({"avx2"}, False)):
        monkeypatch.setattr(devices, "_cpu_flags", lambda flags=flags: flags)
        assert native_bf16("cpu") is expected


def test_train_precision_auto_records_what_it_chose(tmp_path, corpus, split_writer, monkeypatch, capsys):
    import json

    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    for native, expected in ((False, "fp32"), (True, "bf16")):
        monkeypatch.setattr(devices, "native_bf16", lambda device, native=native: native)
        out = tmp_path / f"run-{expected}"
        assert main(["train", "--data", str(split), "--out", str(out), "--epochs", "1", "--embed-dim", "16", "-q",
                     "--precision", "auto"]) == 0
        assert f"--precision auto: {expected}" in capsys.readouterr().err
        summary = json.loads((out / "results.json").read_text())
        assert summary["config"]["train"]["precision"] == expected


# ---- on a GPU ------------------------------------------------------------------------------------------
def _models(corpus, tiny_config):
    vocab = Vocab.build(c for d in corpus for c in d.clauses)
    torch.manual_seed(0)
    yield "e2eecpe", build_model("e2eecpe", vocab, tiny_config)
    yield "e2eecpe+char", build_model("e2eecpe", vocab, {**tiny_config, "char_backoff": True})
    for name in ("indep", "inter-ce", "inter-ec"):
        yield name, build_model(name, vocab, TWO_STAGE_TINY)


@cuda
def test_gpu_forward_and_gradients_match_the_cpu(corpus, tiny_config):
    docs = corpus[:12]
    for name, cpu_model in _models(corpus, tiny_config):
        gpu_model = build_model(cpu_model.name, cpu_model.vocab, vars(cpu_model.config))
        gpu_model.load_state_dict(cpu_model.state_dict())
        gpu_model.cuda()
        assert model_device(gpu_model).type == "cuda"
        # evaluation: same scores, same predictions
        t = cpu_model.tensorize(docs)
        batch = t.batch(range(len(docs)))
        cpu_model.eval(), gpu_model.eval()
        with torch.no_grad():
            a, b = cpu_model(batch), gpu_model(batch.to("cuda"))
        for key in a:
            if a[key].is_floating_point():
                torch.testing.assert_close(b[key].cpu(), a[key], atol=1e-4, rtol=1e-4, msg=f"{name} {key}")
        assert [p.pairs and [(e, c) for e, c, _ in p.pairs] for p in predict(gpu_model, t)] == \
               [p.pairs and [(e, c) for e, c, _ in p.pairs] for p in predict(cpu_model, t)], name
        # training: the loss and the gradients of a step (dropout off so that both see the same network)
        for m in (cpu_model, gpu_model):
            m.train()
            for mod in m.modules():
                if isinstance(mod, torch.nn.Dropout):
                    mod.p = 0.0
        if name.startswith("e2eecpe"):
            for m in (cpu_model, gpu_model):
                m.config.word_dropout = 0.0
        if hasattr(cpu_model, "stage1"):
            la = cpu_model.stage1.loss(cpu_model.stage1(batch), batch)
            lb = gpu_model.stage1.loss(gpu_model.stage1(batch.to("cuda")), batch.to("cuda"))
        else:
            la = cpu_model.loss(cpu_model(batch), batch)
            lb = gpu_model.loss(gpu_model(batch.to("cuda")), batch.to("cuda"))
        torch.testing.assert_close(lb.cpu(), la, atol=1e-4, rtol=1e-4)
        cpu_model.zero_grad(), gpu_model.zero_grad()
        la.backward(), lb.backward()
        for (n, pa), (_, pb) in zip(cpu_model.named_parameters(), gpu_model.named_parameters()):
            if pa.grad is None:
                assert pb.grad is None, f"{name} {n}"
                continue
            ga, gb = pa.grad.to_dense() if pa.grad.is_sparse else pa.grad, pb.grad.to_dense() if pb.grad.is_sparse else pb.grad
            torch.testing.assert_close(gb.cpu(), ga, atol=1e-4, rtol=1e-3, msg=f"{name} {n}")


@cuda
def test_gpu_training_learns_the_toy_task(corpus, tiny_config):
    vocab = Vocab.build(c for d in corpus for c in d.clauses)
    torch.manual_seed(0)
    model = build_model("e2eecpe", vocab, tiny_config).cuda()
    train, dev = model.tensorize(corpus[:30]), model.tensorize(corpus[30:])
    history = Trainer(TrainConfig(epochs=25, patience=25, batch_size=8, lr=1e-2), progress=False).fit(model, train, dev)
    assert history.best_score > 0.8  # the toy pair (高兴 <- 收到 礼物) is easy
    assert model_device(model).type == "cuda"


@cuda
def test_gpu_train_run_saves_a_checkpoint_that_loads_on_the_cpu(tmp_path, corpus, split_writer):
    split = split_writer(tmp_path / "split10", corpus[:30], corpus[30:])
    for model in ("e2eecpe", "inter-ec"):
        out = tmp_path / model
        rc = main(["train", "--data", str(split), "--out", str(out), "--model", model, "--epochs", "2", "--embed-dim", "16",
                   "--device", "cuda", "-q"])
        assert rc == 0
        import json

        res = json.loads((out / "fold1" / "result.json").read_text())
        assert res["environment"]["device"] == "cuda" and res["environment"]["gpu"]
        ckpt = torch.load(out / "fold1" / "model.pt", map_location="meta", weights_only=True)
        assert all(v.device.type == "meta" for v in ckpt["state_dict"].values())  # was saved from CPU tensors
        cpu_model, _ = load_model(out / "fold1" / "model.pt")
        gpu_model, _ = load_model(out / "fold1" / "model.pt", device="cuda")
        t = cpu_model.tensorize(corpus[30:])
        assert [p.pairs and [(e, c) for e, c, _ in p.pairs] for p in predict(gpu_model, t)] == \
               [p.pairs and [(e, c) for e, c, _ in p.pairs] for p in predict(cpu_model, t)]


@cuda
def test_gpu_extractor_matches_the_cpu(tmp_path, corpus, tiny_config):
    from ecpe.inference import Extractor

    model = build_model("e2eecpe", Vocab.build(c for d in corpus for c in d.clauses), tiny_config)
    path = save_model(model, tmp_path / "m.pt", {"segmenter": "jieba"})
    items = [{"clauses": d.clauses} for d in corpus] * 8  # > one chunk: the pipelined path too
    cpu = Extractor.load(path).extract_many(items)
    gpu = Extractor.load(path, device="cuda").extract_many(items)
    assert [[(p["emotion"], p["cause"]) for p in r["pairs"]] for r in gpu] == \
           [[(p["emotion"], p["cause"]) for p in r["pairs"]] for r in cpu]
    for a, b in zip(cpu, gpu):
        assert max(abs(x - y) for x, y in zip(a["emotion_prob"], b["emotion_prob"])) < 1e-3


def test_reproduce_with_missing_gpu_fails_before_training(tmp_path, monkeypatch, capsys):
    from test_reproduce import make_dataset

    data = make_dataset(tmp_path / "data")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["reproduce", "--data", str(data), "--out", str(tmp_path / "r"), "--quick", "-q", "--device", "cuda"])
    assert rc == 2 and "asked for" in capsys.readouterr().err
    assert not list((tmp_path / "r").glob("runs/*/fold*/result.json"))


@cuda
def test_gpu_ensemble_matches_the_cpu(tmp_path, corpus, tiny_config):
    from ecpe.inference import Extractor

    vocab = Vocab.build(c for d in corpus for c in d.clauses)
    paths = []
    for s in (0, 1):
        torch.manual_seed(s)
        paths.append(save_model(build_model("e2eecpe", vocab, tiny_config), tmp_path / f"m{s}.pt", {"segmenter": "jieba"}))
    items = [{"clauses": d.clauses} for d in corpus]
    cpu = Extractor.load(paths).extract_many(items, threshold=0.1)
    gpu_ex = Extractor.load(paths, device="cuda")
    assert gpu_ex.info["device"].startswith("cuda")
    gpu = gpu_ex.extract_many(items, threshold=0.1)
    assert [[(p["emotion"], p["cause"]) for p in r["pairs"]] for r in gpu] == \
           [[(p["emotion"], p["cause"]) for p in r["pairs"]] for r in cpu]


def test_training_processes_keep_freed_memory_on_glibc():
    """ecpe train asks glibc's malloc to keep freed blocks (retain_freed_memory): taken where the C library
    is glibc, and declined without an error elsewhere."""
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert retain_freed_memory() is glibc
    assert retain_freed_memory() is glibc  # again: the same settings, no harm
