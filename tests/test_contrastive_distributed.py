"""The contrastive loss under 2 real processes (gloo on CPU) against 1 process on the concatenated batch.

Each rank holds half of the batch and a copy of two small encoders plus a learnable temperature; after `backward` the
parameter gradients are averaged over ranks exactly as DDP does (all-reduce / world size).
"""

import os
import tempfile

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from distributed_support import exit_worker, free_port, gloo_process_group
from transformers_internvideo2.losses.contrastive import video_text_contrastive_loss


WORLD_SIZE = 2
BATCH = 8  # global batch; 4 pairs per rank
SAMPLE_IDS = torch.tensor([0, 1, 1, 2, 3, 3, 4, 0])  # duplicates within and across ranks


def _problem():
    """Deterministic encoders and raw inputs (identical in every process)."""
    gen = torch.Generator().manual_seed(0)
    video_encoder = torch.nn.Linear(6, 5).double()
    text_encoder = torch.nn.Linear(7, 5).double()
    with torch.no_grad():
        for p in list(video_encoder.parameters()) + list(text_encoder.parameters()):
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64))
    log_temperature = torch.nn.Parameter(torch.tensor(-1.5, dtype=torch.float64))
    raw_video = torch.randn(BATCH, 6, generator=gen, dtype=torch.float64)
    raw_text = torch.randn(BATCH, 7, generator=gen, dtype=torch.float64)
    return video_encoder, text_encoder, log_temperature, raw_video, raw_text


def _loss_and_grads(rows, original, with_ids, average_over_ranks):
    video_encoder, text_encoder, log_temperature, raw_video, raw_text = _problem()
    params = list(video_encoder.parameters()) + list(text_encoder.parameters()) + [log_temperature]
    loss = video_text_contrastive_loss(
        video_encoder(raw_video[rows]),
        text_encoder(raw_text[rows]),
        log_temperature.exp(),
        original_gradient_scaling=original,
        sample_ids=SAMPLE_IDS[rows] if with_ids else None,
    )
    loss.backward()
    grads = [p.grad.clone() for p in params]
    if average_over_ranks:  # what DistributedDataParallel does to parameter gradients
        for g in grads:
            dist.all_reduce(g)
            g /= dist.get_world_size()
    return loss.detach(), grads


CASES = [(False, False), (False, True), (True, False), (True, True)]  # (original_gradient_scaling, with_ids)


def _worker(rank, port, out_dir):
    with gloo_process_group(rank, WORLD_SIZE, port):
        local = slice(rank * BATCH // WORLD_SIZE, (rank + 1) * BATCH // WORLD_SIZE)
        results = {case: _loss_and_grads(local, *case, average_over_ranks=True) for case in CASES}
        torch.save(results, os.path.join(out_dir, f"rank{rank}.pt"))
    exit_worker()


@pytest.fixture(scope="module")
def two_process_results():
    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_worker, args=(free_port(), out_dir), nprocs=WORLD_SIZE, join=True)
        return [torch.load(os.path.join(out_dir, f"rank{r}.pt")) for r in range(WORLD_SIZE)]


@pytest.mark.parametrize("with_ids", [False, True])
def test_exact_mode_equals_one_process_on_the_concatenated_batch(two_process_results, with_ids):
    full_loss, full_grads = _loss_and_grads(slice(None), False, with_ids, average_over_ranks=False)
    case = (False, with_ids)
    # each rank's loss is the mean over its own rows, so the mean over ranks is the full-batch loss
    mean_loss = sum(r[case][0] for r in two_process_results) / WORLD_SIZE
    torch.testing.assert_close(mean_loss, full_loss, atol=1e-6, rtol=0)
    for rank_result in two_process_results:
        for grad, expected in zip(rank_result[case][1], full_grads):
            torch.testing.assert_close(grad, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("with_ids", [False, True])
def test_original_mode_divides_encoder_gradients_by_world_size(two_process_results, with_ids):
    full_loss, full_grads = _loss_and_grads(slice(None), False, with_ids, average_over_ranks=False)
    case = (True, with_ids)
    for rank_result in two_process_results:
        loss, grads = rank_result[case]
        torch.testing.assert_close(loss, full_loss, atol=1e-6, rtol=0)  # every rank computes the global loss
        *encoder_grads, temperature_grad = grads
        for grad, expected in zip(encoder_grads, full_grads[:-1]):
            torch.testing.assert_close(grad, expected / WORLD_SIZE, atol=1e-6, rtol=0)
        # the temperature is not gathered, so it keeps the full gradient
        torch.testing.assert_close(temperature_grad, full_grads[-1], atol=1e-6, rtol=0)
    # and the difference is real (not a tolerance artefact)
    assert (two_process_results[0][case][1][0] - full_grads[0]).abs().max() > 1e-2
