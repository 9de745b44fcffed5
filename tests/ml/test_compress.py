"""Model compression: pruning, quantization, low rank, serialization, report, policy."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from torch import nn

from eduplatform.ml import compress as C
from eduplatform.ml.compress.layers import pack_int4, unpack_int4


@pytest.fixture(autouse=True)
def one_thread():
    """Small models: one thread (a busy 2-core box makes two threads much slower) and
    no denormals (tiny Adam moments)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)
    torch.set_num_threads(threads)


def mlp(n_in=16, hidden=64, n_out=1, seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(n_in, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_out),
    ).eval()


class EmbNet(nn.Module):
    """An embedding table and Linear layers, like the recommender's network."""

    def __init__(self, n_items=300, dim=16, hidden=32):
        super().__init__()
        self.emb = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, idx):
        return self.head(self.emb(idx)).squeeze(-1)


def emb_net(seed=0) -> EmbNet:
    torch.manual_seed(seed)
    return EmbNet().eval()


def size(module) -> int:
    return C.artifact_size(*C.variant_state(module))


def roundtrip(module, build_base, tmp_path):
    path = tmp_path / "variant.safetensors"
    sha = C.save_variant(path, module)
    return C.read_variant(path, sha, build_base)


def toy_task(n=2048, n_in=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, n_in, generator=g)
    y = (torch.sin(x[:, :4]).sum(1) + 0.5 * x[:, 4] * x[:, 5]).unsqueeze(1)
    return x, y


def train(model, x, y, steps=300, lr=3e-3):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return model.eval()


def mse(model, x, y) -> float:
    with torch.no_grad():
        return float(nn.functional.mse_loss(model(x), y))


# ------------------------------------------------------------------------- pruning


def test_magnitude_pruning_zeroes_weights_and_shrinks_the_artifact(tmp_path):
    model = mlp()
    pruned = C.magnitude_prune(model, 0.8)
    weights = torch.cat([m.weight.flatten() for m in pruned.modules() if isinstance(m, nn.Linear)])
    assert abs(float((weights == 0).float().mean()) - 0.8) < 0.01
    assert isinstance(pruned[0].weight, nn.Parameter)  # masks folded in, no hooks left
    assert not pruned[0]._forward_pre_hooks
    assert size(pruned) < 0.35 * size(model)  # bit mask + non-zero values, not dense zeros
    loaded = roundtrip(pruned, mlp, tmp_path)
    x = torch.randn(8, 16)
    assert torch.equal(loaded(x), pruned(x))
    assert model[0].weight.count_nonzero() == model[0].weight.numel()  # input left alone


def test_magnitude_pruning_fine_tunes_with_pruned_weights_held_at_zero():
    x, y = toy_task()
    model = train(mlp(), x, y)
    calls = []

    def finetune(m):
        calls.append(1)
        return train(m, x, y, steps=100, lr=1e-3)

    pruned = C.magnitude_prune(model, 0.7, finetune=finetune, steps=2)
    assert len(calls) == 2
    weights = torch.cat([m.weight.flatten() for m in pruned.modules() if isinstance(m, nn.Linear)])
    assert float((weights == 0).float().mean()) >= 0.69
    assert mse(pruned, x, y) < 2.0 * mse(model, x, y) + 0.02


def test_structured_pruning_removes_units_and_shrinks_the_matrices():
    model = mlp(hidden=64)
    groups = C.mlp_groups(model)
    assert [g.members for g in groups] == [(("0", "out"), ("2", "in")), (("2", "out"), ("4", "in"))]
    small = C.structured_prune(model, groups, keep=0.25)
    assert small[0].weight.shape == (16, 16)
    assert small[2].weight.shape == (16, 16)
    assert small[4].weight.shape == (1, 16)
    assert C.parameter_counts(small)[0] < 0.2 * C.parameter_counts(model)[0]
    assert size(small) < 0.25 * size(model)


def test_structured_pruning_keeps_the_most_important_units():
    model = mlp(n_in=4, hidden=8)
    with torch.no_grad():
        model[0].weight[[1, 5]] *= 100.0  # units 1 and 5 dominate
    small = C.structured_prune(model, C.mlp_groups(model)[:1], keep=0.25)
    assert torch.equal(small[0].weight, model[0].weight[[1, 5]])
    assert torch.equal(small[2].weight, model[2].weight[:, [1, 5]])


def test_structured_pruning_stays_close_after_fine_tuning():
    x, y = toy_task()
    model = train(mlp(hidden=64), x, y, steps=600)
    base = mse(model, x, y)
    no_ft = C.structured_prune(model, C.mlp_groups(model), keep=0.5)
    tuned = C.structured_prune(
        model, C.mlp_groups(model), keep=0.5, finetune=lambda m: train(m, x, y, 300, 1e-3)
    )
    assert tuned[0].out_features == 32
    assert mse(tuned, x, y) < mse(no_ft, x, y)
    assert mse(tuned, x, y) < 1.5 * base + 0.01
    with torch.no_grad():
        gap = (tuned(x) - model(x)).abs().mean()
    assert float(gap) < 0.2 * float(y.abs().mean())


def test_structured_pruning_of_embedding_dimensions(tmp_path):
    model = emb_net()
    group = C.UnitGroup("dim", (("emb", "dim"), ("head.0", "in")))
    small = C.structured_prune(model, [group], keep=0.5)
    assert small.emb.weight.shape == (301, 8)
    assert small.emb.padding_idx == 300
    assert small.head[0].weight.shape == (32, 8)
    loaded = roundtrip(small, emb_net, tmp_path)
    idx = torch.arange(301)
    assert torch.equal(loaded(idx), small(idx))


def test_structured_group_members_must_agree():
    model = mlp()
    with pytest.raises(ValueError, match="disagree"):
        C.structured_prune(model, [C.UnitGroup("bad", (("0", "out"), ("4", "out")))], keep=0.5)


# -------------------------------------------------------------------- quantization


def test_quantize_linear_layers_gives_int8_weights_and_close_outputs():
    model = mlp()
    x = torch.randn(256, 16)
    with torch.no_grad():
        ref = model(x)
    q = C.quantize_linear_layers(model)  # the one choice point, backend "auto"
    layers = [m for m in q.modules() if isinstance(m, C.Int8Linear)]
    assert len(layers) == 3
    assert not any(isinstance(m, nn.Linear) for m in q.modules())
    assert all(m.qweight.dtype == torch.int8 for m in layers)
    assert all(m.backend == C.AUTO_LINEAR_BACKEND for m in layers)
    with torch.no_grad():
        err = (q(x) - ref).abs().max() / ref.abs().max()
    assert float(err) < 0.02
    for backend in ("dequant", "ao_dynamic", "int_mm"):
        qb = C.quantize_linear_layers(model, backend)
        with torch.no_grad():
            out = qb(x)
        assert float((out - ref).abs().max() / ref.abs().max()) < 0.05, backend
    with pytest.raises(ValueError):
        C.quantize_linear_layers(model, "fp8")


def test_int8_rows_reconstruct_within_half_a_step():
    w = torch.randn(10, 33)
    q, s = C.quantize_rows(w)
    assert q.dtype == torch.int8 and int(q.abs().max()) <= 127
    assert torch.all((C.dequantize_rows(q, s) - w).abs() <= s.unsqueeze(1) / 2 + 1e-6)
    packed = pack_int4(torch.randint(-7, 8, (5, 7), dtype=torch.int8))
    assert packed.shape == (5, 4)
    values = torch.randint(-7, 8, (5, 7), dtype=torch.int8)
    assert torch.equal(unpack_int4(pack_int4(values), 7), values)


@pytest.mark.parametrize(
    "backend,bits,mode",
    [("dequant", 8, "dequant"), ("ao_dynamic", 8, "gather"), ("int_mm", 4, "dequant")],
)
def test_quantized_save_load_gives_identical_outputs(tmp_path, backend, bits, mode):
    model = emb_net()
    q = C.quantize_embeddings(C.quantize_linear_layers(model, backend), bits=bits, mode=mode)
    assert q.emb.qweight.dtype == (torch.int8 if bits == 8 else torch.uint8)
    idx = torch.randint(0, 301, (64,))
    with torch.no_grad():
        before = q(idx)
        assert float((before - model(idx)).abs().max()) < 0.1
    loaded = roundtrip(q, emb_net, tmp_path)
    assert isinstance(loaded.emb, C.Int8Embedding) and isinstance(loaded.head[0], C.Int8Linear)
    with torch.no_grad():
        assert torch.equal(loaded(idx), before)
    assert size(q) < 0.4 * size(model)


def test_embedding_quantization_shrinks_a_large_table_about_3x_and_4bit_more():
    torch.manual_seed(0)
    model = EmbNet(n_items=20_000, dim=16).eval()
    fp32, int8 = size(model), size(C.quantize_embeddings(model, bits=8))
    int4 = size(C.quantize_embeddings(model, bits=4))
    assert 3.0 < fp32 / int8 < 3.6  # 16 int8 + a float16 scale per row vs 64 bytes
    assert fp32 / int4 > 6.0


# ------------------------------------------------------------------------ low rank


def test_rank_by_energy_and_by_budget():
    s = torch.tensor([4.0, 2.0, 1.0, 0.5, 0.1])
    energy = (s**2).cumsum(0) / (s**2).sum()  # 0.753, 0.941, 0.988, 0.9999, 1
    assert float(energy[1]) > 0.9 > float(energy[0])
    assert C.choose_rank(s, (5, 5), energy=0.9) == 2
    assert C.choose_rank(s, (5, 5), energy=0.98) == 3
    assert C.choose_rank(s, (5, 5), energy=0.99) == 4
    assert C.choose_rank(s, (5, 5), energy=1.0) == 5
    # budget: r (m + n) <= budget * m * n
    assert C.choose_rank(torch.ones(64), (64, 128), budget=0.5) == 21  # 21 * 192 <= 4096
    assert C.choose_rank(torch.ones(64), (64, 128), budget=0.25) == 10
    assert C.choose_rank(s, (100, 100), energy=0.99, budget=0.01) == 1
    with pytest.raises(ValueError):
        C.choose_rank(s, (5, 5))


def test_low_rank_factors_linear_and_embedding(tmp_path):
    torch.manual_seed(0)
    model = EmbNet(n_items=400, dim=16, hidden=64).eval()
    with torch.no_grad():  # exact rank 3 table and rank 4 first layer
        model.emb.weight.copy_(torch.randn(401, 3) @ torch.randn(3, 16))
        model.head[0].weight.copy_(torch.randn(64, 4) @ torch.randn(4, 16))
    lr = C.low_rank(model, energy=0.9999, min_saving=0.2)
    assert isinstance(lr.emb, C.LowRankEmbedding) and lr.emb.rank == 3
    assert isinstance(lr.head[0], C.LowRankLinear) and lr.head[0].rank == 4
    assert isinstance(lr.head[2], nn.Linear)  # 64 -> 1 saves nothing
    idx = torch.arange(401)
    with torch.no_grad():
        assert torch.allclose(lr(idx), model(idx), atol=1e-3, rtol=1e-3)
    assert size(lr) < 0.35 * size(model)
    loaded = roundtrip(C.quantize(lr), lambda: EmbNet(400, 16, 64), tmp_path)
    with torch.no_grad():
        assert torch.equal(loaded(idx), C.quantize(lr)(idx))
    budget = C.low_rank(model, energy=None, budget=0.1)
    assert budget.emb.rank == 1


def test_low_rank_calls_finetune_once():
    calls = []
    C.low_rank(mlp(hidden=64), energy=0.5, finetune=lambda m: calls.append(m) or m)
    assert len(calls) == 1


# ------------------------------------------------------------------- serialization


def test_loading_never_unpickles(tmp_path, monkeypatch):
    q = C.quantize(emb_net())
    path = tmp_path / "v.safetensors"
    C.save_variant(path, q)

    def refuse(*args, **kwargs):
        raise AssertionError("unpickling during load")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    loaded = C.read_variant(path, None, emb_net)
    idx = torch.arange(10)
    with torch.no_grad():
        assert torch.equal(loaded(idx), q(idx))
    assert path.read_bytes()[:1] != b"\x80"  # not a pickle stream


def test_variant_state_is_plain_tensors_and_json():
    tensors, config = C.variant_state(C.quantize(C.magnitude_prune(emb_net(), 0.8)))
    assert all(isinstance(t, torch.Tensor) for t in tensors.values())
    text = json.dumps(config)
    assert "int8_linear" in text and "bitmask" in text


def test_loading_a_state_that_misses_tensors_fails():
    tensors, config = C.variant_state(mlp())
    config["layers"] = config["layers"][1:]
    with pytest.raises(ValueError, match="misses"):
        C.load_variant(tensors, config, mlp)


# --------------------------------------------------------------- report


def test_compress_model_report_is_json_serializable_and_consistent():
    x, y = toy_task(n=512)
    model = train(mlp(hidden=32), x, y, steps=200)
    evaluate = lambda m: -mse(m, x, y)  # noqa: E731
    settings = C.CompressionSettings(repeats_b1=5, repeats_b256=3, min_repeats=2, warmup=1)
    result = C.compress_model(
        model,
        build_base=lambda: mlp(hidden=32),
        example_inputs_b1=(x[:1],),
        example_inputs_b256=(x[:256],),
        evaluate=evaluate,
        finetune=lambda m: train(m, x, y, 50, 1e-3),
        policy=C.SelectionPolicy(metric="-mse", tolerance=0.05),
        settings=settings,
    )
    report = json.loads(json.dumps(result.to_dict()))
    assert [v["name"] for v in report["variants"]] == list(C.VARIANTS)
    assert report["chosen"] == result.chosen
    fp32 = result.row("fp32")
    assert fp32.size_ratio == 1.0 and fp32.quality_loss == 0.0
    for r in result.rows:
        assert r.artifact_bytes > 0 and r.samples_b1 >= 2 and r.samples_b256 >= 2
        assert r.p99_b1_ms >= r.p50_b1_ms > 0
    assert result.row("quantized").artifact_bytes < fp32.artifact_bytes / 2
    assert result.row("structured").params < fp32.params
    assert result.row("pruned").nonzero_params < 0.3 * fp32.params
    tensors, config = result.state()
    loaded = C.load_variant(tensors, config, lambda: mlp(hidden=32))
    with torch.no_grad():
        assert torch.equal(loaded(x[:4]), result.module(x[:4]))
    table = result.table()
    assert "structured+quantized" in table and "served:" in table


def test_latency_measurement_interleaves_and_restores_threads():
    order = []

    class Probe(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            order.append(self.name)
            return x

    threads = torch.get_num_threads()
    samples = C.measure_latency(
        {"a": Probe("a"), "b": Probe("b")},
        {"a": (np.zeros(1),), "b": (np.zeros(1),)},
        repeats=4,
        warmup=1,
        threads=1,
    )
    assert torch.get_num_threads() == threads
    assert len(samples["a"]) == len(samples["b"]) == 4
    assert order[2:] == ["a", "b", "b", "a", "a", "b", "b", "a"]


# ------------------------------------------------------------------ model adapters


@pytest.fixture(scope="module")
def churn_features(tmp_path_factory):
    from churn.model.features import build_dataset
    from eduplatform.ml.datasets.oulad import load_oulad
    from eduplatform.ml.datasets.synthetic import generate, write_oulad_folder

    folder = tmp_path_factory.mktemp("oulad")
    write_oulad_folder(generate(learners=120, courses=2, seed=3), folder)
    return build_dataset(load_oulad(folder), [30, 60]).labelled()


def test_churn_predictor_with_a_compressed_network_round_trips(churn_features, tmp_path):
    from churn.model.compression import churn_serving_state, load_churn_predictor
    from churn.model.net import build_module
    from churn.model.predictor import ChurnPredictor
    from eduplatform.ml.artifacts import load_artifact, save_artifact
    from eduplatform.ml.preprocess import Preprocessor

    f = churn_features
    pre = Preprocessor.fit(f.frame, f.kinds)
    arch = {
        "n_flat": len(pre.output_columns),
        "n_channels": len(f.channels),
        "hidden": 32,
        "layers": 2,
        "dropout": 0.1,
        "seq_hidden": 8,
        "use_sequence": True,  # the GRU stays fp32 ("rest" tensors)
        "n_members": 2,
    }
    torch.manual_seed(0)
    predictor = ChurnPredictor(pre, np.ones(len(f.channels)), build_module(arch).eval(), arch)
    compressed = C.quantize(C.structured_prune(predictor.module, C.mlp_groups(predictor.module)))
    predictor.module = compressed
    path = tmp_path / "churn.safetensors"
    sha = save_artifact(path, *churn_serving_state(predictor, compressed, "structured+quantized"))
    artifact = load_artifact(path, sha)
    assert not any(k.startswith("module.") for k in artifact.tensors)
    loaded = load_churn_predictor(artifact.tensors, artifact.config)
    assert isinstance(loaded.module.nets[0].mlp[0], C.Int8Linear)
    assert loaded.module.nets[0].mlp[0].out_features == 16
    assert np.array_equal(loaded.predict_proba(f.frame), predictor.predict_proba(f.frame))
    assert loaded.predict(f.frame.head(2), top_k=2)[0].top_factors  # explanations still work
    predictor.module = build_module(arch).eval()
    plain = load_churn_predictor(*predictor.to_state())  # fp32 states load as before
    assert np.array_equal(plain.predict_proba(f.frame), predictor.predict_proba(f.frame))


def test_recommender_with_a_compressed_network_round_trips(tmp_path):
    from eduplatform.ml.artifacts import load_artifact, save_artifact
    from recommender.model.compression import (
        load_recommender,
        prepare_scoring,
        recommender_serving_state,
        scoring_groups,
        scoring_inputs,
    )
    from recommender.model.synthetic import build_synthetic

    rec = build_synthetic(80, seed=0, n_learners=60)
    net = rec.net
    small = C.structured_prune(net, scoring_groups(net), keep=0.5)
    assert small.hidden.in_features == small.item_in.out_features == net.item_in.out_features // 2
    assert small.pair_in.out_features == small.learner_in.out_features == small.hidden.in_features
    compressed = C.quantize(small)
    raw = scoring_inputs(rec, 4)
    with torch.no_grad():
        scores = compressed(*prepare_scoring(compressed, raw))
    assert scores.shape == (4, rec.runs["SYN_BENCH"].n_items)
    path = tmp_path / "rec.safetensors"
    sha = save_artifact(path, *recommender_serving_state(rec, compressed, "structured+quantized"))
    artifact = load_artifact(path, sha)
    loaded = load_recommender(artifact.tensors, artifact.config)
    assert type(loaded.net.hidden) is type(compressed.hidden) is not nn.Linear
    rec.net = compressed
    rec._cache.clear()
    learner = int(rec.runs["SYN_BENCH"].learner_ids[0])
    assert loaded.recommend(learner, "SYN_BENCH") == rec.recommend(learner, "SYN_BENCH")
    with torch.no_grad():
        assert torch.equal(loaded.net(*prepare_scoring(loaded.net, raw)), scores)


def test_compact_linear_matches_linear_in_both_orientations(tmp_path):
    torch.manual_seed(0)
    for rows, fin, fout in [(3, 6, 8), (5000, 6, 8), (5000, 6, 32), (2, 2500, 6)]:
        base = nn.Linear(fin, fout)
        compact = C.CompactLinear(fin, fout)
        compact.load_state_dict(base.state_dict())
        x = torch.randn(2, rows, fin)
        with torch.no_grad():
            ref, out = base(x), compact(x)
        assert out.shape == ref.shape
        assert torch.allclose(out, ref, atol=1e-5, rtol=1e-5)
    small = C.structured_prune(mlp(), C.mlp_groups(mlp()), keep=0.25)
    assert isinstance(small[0], C.CompactLinear)
    loaded = roundtrip(small, mlp, tmp_path)
    assert isinstance(loaded[0], C.CompactLinear)
    x = torch.randn(5000, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), small(x))


# ------------------------------------------------- the selection policy, case by case
# (make mutate's tests for select_variant and SelectionPolicy: each names a boundary)
