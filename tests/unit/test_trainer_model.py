"""The Transformer: causality for every variant, matched parameter counts, overfitting, sampling."""

import pytest
import torch
import torch.nn.functional as F

from trainer.config import ModelConfig, OptimizerConfig
from trainer.model import TransformerLM, generate
from trainer.train import make_optimizer

SMALL = {"vocab_size": 300, "context_length": 16, "d_model": 32, "num_layers": 2, "num_heads": 4}


def small_model(**changes) -> TransformerLM:
    torch.manual_seed(0)
    return TransformerLM(ModelConfig(**{**SMALL, **changes}))


@pytest.mark.parametrize(
    "variant",
    [
        {"positions": "rope"},
        {"positions": "nope"},
        {"positions": "learned"},
        {"norm_position": "post", "norm": "layernorm"},
    ],
    ids=["rope", "nope", "learned", "post-layernorm"],
)
def test_changing_future_tokens_leaves_past_logits_unchanged(variant):
    model = small_model(**variant).eval()
    ids = torch.randint(300, (2, 16), generator=torch.Generator().manual_seed(1))
    changed = ids.clone()
    changed[:, 9:] = (changed[:, 9:] + 7) % 300
    with torch.no_grad():
        before, after = model(ids), model(changed)
    torch.testing.assert_close(before[:, :9], after[:, :9])
    assert not torch.allclose(before[:, 9:], after[:, 9:])


@pytest.mark.parametrize("positions", ["rope", "learned", "nope"])
def test_only_position_encodings_make_order_matter(positions):
    # One layer: with a second, the causal mask alone leaks order into later positions.
    model = small_model(positions=positions, num_layers=1).eval()
    ids = torch.randint(300, (1, 16), generator=torch.Generator().manual_seed(2))
    swapped = ids.clone()
    swapped[0, [3, 5]] = ids[0, [5, 3]]
    with torch.no_grad():
        same = torch.allclose(model(ids)[0, -1], model(swapped)[0, -1], atol=1e-5)
    assert same == (positions == "nope")


def test_feed_forward_variants_have_the_same_parameter_count():
    counts = {ffn: small_model(ffn=ffn, d_ff=64).num_params() for ffn in ("swiglu", "silu", "gelu")}
    assert len(set(counts.values())) == 1, counts


def test_tied_weights_share_the_embedding():
    untied, tied = small_model(), small_model(tie_weights=True)
    assert tied.lm_head.weight is tied.embedding.weight
    assert untied.num_params() - tied.num_params() == 300 * 32


def test_a_single_batch_overfits():
    model = small_model()
    optimizer = make_optimizer(
        model, OptimizerConfig(lr=1e-2, weight_decay=0.0), torch.device("cpu")
    )
    ids = torch.randint(300, (4, 17), generator=torch.Generator().manual_seed(3))
    x, y = ids[:, :-1], ids[:, 1:]
    for _ in range(150):
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_sampling_with_tiny_top_p_is_greedy():
    model = small_model().eval()
    prompt = [1, 2, 3]
    greedy = generate(model, prompt, 10, 0.0, 1.0, torch.Generator().manual_seed(0))
    nucleus = generate(model, prompt, 10, 1.0, 1e-6, torch.Generator().manual_seed(0))
    assert greedy == nucleus and len(greedy) == 10
    stop = greedy[3]
    stopped = generate(model, prompt, 10, 0.0, 1.0, torch.Generator(), stop_token=stop)
    assert stopped == greedy[: greedy.index(stop)]


def test_generation_past_the_context_length_crops():
    model = small_model(positions="learned").eval()
    out = generate(model, list(range(14)), 8, 1.0, 0.9, torch.Generator().manual_seed(0))
    assert len(out) == 8
