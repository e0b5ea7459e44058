"""The cross-rank loss helpers under a real 2-process gloo group (file store: no network).

``gather_with_grad`` is what makes the image-text loss see every rank's regions as negatives;
it must return all rows in rank order, send each rank the gradient that *every* rank's loss puts
on its rows (so DDP's average equals the single-process gradient), and cope with ranks holding
different numbers of rows (and bool masks). The end-to-end check: a tiny DetCLIPv2 under DDP with
an image-text batch split over two ranks gets the gradients of one process holding the batch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from detclip_bench.dist import DistContext
from detclip_bench.schema import DataKind, ImageRef, Sample
from reference_model.detclipv2 import DetCLIPv2, InputSpec, collate_train
from reference_model.detclipv2.distributed import gather_strings, gather_with_grad, mean_over_ranks
from reference_model.detclipv2.noun_phrases import NounPhraseExtractor
from reference_model.train.engine import wrap_ddp

WORLD = 2


def _worker(rank: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        x = torch.arange(3 * (rank + 1), dtype=torch.float32).reshape(rank + 1, 3).add(10 * rank).requires_grad_()
        gathered, offset = gather_with_grad(x)
        # each rank's loss weighs the gathered rows differently: rank r's rows must receive the sum
        weights = torch.arange(gathered.numel(), dtype=torch.float32).reshape(gathered.shape) * (rank + 1)
        (gathered * weights).sum().backward()
        mask, _ = gather_with_grad(torch.tensor([rank == 0] * (rank + 2)))
        result = {
            "gathered": gathered.detach(),
            "offset": offset,
            "grad": x.grad,
            "weights": weights,
            "mask": mask,
            "strings": gather_strings([["cat", "dog"], ["dog", "zebra", "cat"]][rank]),
            "mean": mean_over_ranks(torch.tensor(float(rank + 1))),
        }
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gather_with_grad_strings_and_mean_on_two_ranks(tmp_path):
    mp.spawn(_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD))
    expected = torch.cat([torch.arange(3.0).reshape(1, 3), torch.arange(6.0).reshape(2, 3) + 10])
    for r in (r0, r1):
        torch.testing.assert_close(r["gathered"], expected)  # rank order, unequal row counts
        assert r["strings"] == ["cat", "dog", "zebra"]  # union, rank-then-local order, same on every rank
        assert r["mean"].item() == 1.5
        assert r["mask"].dtype == torch.bool and r["mask"].tolist() == [True, True, False, False, False]
    assert (r0["offset"], r1["offset"]) == (0, 1)
    # single process holding both ranks' rows with loss = Σ_r (gathered · w_r): d/dx = Σ_r w_r over x's rows
    total = r0["weights"] + r1["weights"]
    torch.testing.assert_close(r0["grad"], total[0:1], rtol=0, atol=0)
    torch.testing.assert_close(r1["grad"], total[1:3], rtol=0, atol=0)


def test_helpers_are_identities_without_a_process_group():
    x = torch.ones(2, 4, requires_grad=True)
    gathered, offset = gather_with_grad(x)
    assert gathered is x and offset == 0
    assert gather_strings(["a", "b", "a"]) == ["a", "b"]
    assert mean_over_ranks(torch.tensor(3.0)).item() == 3.0


# ------------------------------------------------------------------ DDP == one process, end to end

N_IMAGES = 4  # the global batch; each of the WORLD ranks holds N_IMAGES // WORLD of it


def _tiny_fp64_model():
    from .conftest import tiny_config

    torch.manual_seed(0)
    return DetCLIPv2(tiny_config()).double()  # fp64: the comparison is then not limited by fp32 summation order


def _pair(i: int) -> Sample:
    """Image-text pair i: a red (even i) or green (odd i) rectangle at a position that depends on i."""
    from .conftest import draw, png_bytes

    colour = ("red", "green")[i % 2]
    img = draw([(10.0 + 6 * i, 8.0 + 3 * i, 60.0 + 6 * i, 44.0 + 3 * i)], [colour])
    return Sample(
        kind=DataKind.IMAGE_TEXT,
        source="synthetic",
        record_id=f"p{i}",
        image=ImageRef(data=png_bytes(img)),
        caption=f"a {colour} box on a grey background",
    )


def _batch(kind: DataKind, indices):
    from .conftest import det_sample

    if kind is DataKind.IMAGE_TEXT:
        # Proposal objectness is the max similarity to the concepts of the *local* batch [P], so the
        # proposals match one process only when every rank holds the global batch's concepts: each
        # rank gets one red and one green caption (different images). The gradient is then exact.
        spec = InputSpec(kind=kind, size=(96, 96), flip=False)
        samples = [_pair(i) for i in indices]
    else:  # concepts_per_image = the 2 positives: no random negatives, so the global concept set is split-free
        spec = InputSpec(kind=kind, size=(96, 64), flip=False, concepts_per_image=2)
        samples = [det_sample(i) for i in indices]
    batch = collate_train(samples, spec, rng=np.random.default_rng(0), noun_phrases=NounPhraseExtractor(""))
    return replace(batch, images=batch.images.double())


def _loss_and_grads(model: torch.nn.Module, forward, batch) -> dict:
    model.zero_grad(set_to_none=True)
    losses = forward(batch)
    losses["loss"].backward()
    grads = {n: torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for n, p in model.named_parameters()}
    return {"loss": losses["loss"].detach(), "grads": grads}


def _ddp_worker(rank: int, store: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=WORLD)
    try:
        model = _tiny_fp64_model()
        ddp = wrap_ddp(model, DistContext(rank, WORLD, rank, torch.device("cpu")))
        share = range(rank * N_IMAGES // WORLD, (rank + 1) * N_IMAGES // WORLD)
        result = {
            kind.value: _loss_and_grads(model, ddp, _batch(kind, share))
            for kind in (DataKind.IMAGE_TEXT, DataKind.DETECTION)
        }
        torch.save(result, f"{out_dir}/ddp{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_gradients_equal_one_process_with_the_global_batch(tmp_path):
    mp.spawn(_ddp_worker, args=(str(tmp_path / "store"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"ddp{r}.pt", weights_only=True) for r in range(WORLD)]
    model = _tiny_fp64_model()
    halves = [set(_batch(DataKind.IMAGE_TEXT, range(r * 2, r * 2 + 2)).concepts) for r in range(WORLD)]  # N_IMAGES = 4
    assert halves[0] == halves[1] == set(_batch(DataKind.IMAGE_TEXT, range(N_IMAGES)).concepts)
    for kind in (DataKind.IMAGE_TEXT, DataKind.DETECTION):
        single = _loss_and_grads(model, model, _batch(kind, range(N_IMAGES)))
        # each rank's loss is its local mean; the mean over ranks is the global-batch loss
        mean_loss = sum(r[kind.value]["loss"] for r in ranks) / WORLD
        # image-text runs in fp64 end to end; detection decodes boxes and centerness targets in fp32
        tol = 1e-12 if kind is DataKind.IMAGE_TEXT else 1e-6
        torch.testing.assert_close(mean_loss, single["loss"], rtol=0, atol=tol)
        worst, scale = 0.0, 0.0
        for name, want in single["grads"].items():
            for r in ranks:  # DDP leaves the same averaged gradient on every rank
                worst = max(worst, (r[kind.value]["grads"][name] - want).abs().max().item())
            scale = max(scale, want.abs().max().item())
        assert scale > 1e-3, kind  # the comparison is not vacuous
        assert worst <= tol, (kind, worst)  # measured: ~6e-17 (image-text), ~3e-8 of max |grad| ~114 (detection)
        if kind is DataKind.IMAGE_TEXT:  # regions reach the backbone only through the gathered embeddings
            assert max(g.abs().max() for n, g in single["grads"].items() if n.startswith("backbone.")) > 0
