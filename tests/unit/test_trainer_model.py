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


# Reference definitions, written out by hand, that the modules must match weight for weight.


def reference_rmsnorm(x, weight, eps=1e-5):
    return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps) * weight


def reference_swiglu(x, w1, w2, w3):
    """CS336: FFN(x) = W2 (SiLU(W1 x) * W3 x), SiLU(z) = z * sigmoid(z)."""
    a = x @ w1.T
    return ((a * torch.sigmoid(a)) * (x @ w3.T)) @ w2.T


def reference_silu_mlp(x, w1, w2):
    """CS336's ungated ablation: FFN(x) = W2 SiLU(W1 x)."""
    a = x @ w1.T
    return (a * torch.sigmoid(a)) @ w2.T


def reference_forward(model, ids):
    """The LM by the handout's equations, with the model's own weights (RMSNorm, RoPE).

    Pre-norm: x = x + MHA(RMSNorm(x)); x = x + FFN(RMSNorm(x)); logits = W_out RMSNorm(x).
    Post-norm: z = RMSNorm(x + MHA(x)); y = RMSNorm(z + FFN(z)); logits = W_out y (no final norm).
    """
    config = model.config
    x = model.embedding.weight[ids]
    seq = ids.shape[1]
    heads, head_dim = config.num_heads, config.d_model // config.num_heads
    inv_freq = config.rope_theta ** (-torch.arange(0, head_dim, 2).float() / head_dim)
    angle = torch.arange(seq).float()[:, None] * inv_freq  # (seq, head_dim / 2)
    cos, sin = angle.cos(), angle.sin()
    mask = torch.ones(seq, seq).triu(1).bool()

    def rope(t):  # rotates the pairs (i, i + head_dim / 2)
        t1, t2 = t[..., : head_dim // 2], t[..., head_dim // 2 :]
        return torch.cat((t1 * cos - t2 * sin, t1 * sin + t2 * cos), dim=-1)

    def mha(block, h):
        q, k, v = (h @ w.T for w in block.attention.qkv.weight.chunk(3))
        q, k, v = (t.view(*t.shape[:2], heads, head_dim).transpose(1, 2) for t in (q, k, v))
        q, k = rope(q), rope(k)
        scores = (q @ k.transpose(-1, -2) / head_dim**0.5).masked_fill(mask, float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(h.shape)
        return out @ block.attention.out.weight.T

    def ffn(block, h):
        f = block.feed_forward
        return reference_swiglu(h, f.w1.weight, f.w2.weight, f.w3.weight)

    for block in model.blocks:
        g1, g2 = block.norm1.weight, block.norm2.weight
        if config.norm_position == "pre":
            x = x + mha(block, reference_rmsnorm(x, g1))
            x = x + ffn(block, reference_rmsnorm(x, g2))
        else:
            x = reference_rmsnorm(x + mha(block, x), g1)
            x = reference_rmsnorm(x + ffn(block, x), g2)
    if config.norm_position == "pre":
        x = reference_rmsnorm(x, model.final_norm.weight)
    return x @ model.lm_head.weight.T


def randomise_gains(model):
    """Norm gains away from 1, so a norm applied in the wrong place shows."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_(
                    torch.rand(p.shape, generator=torch.Generator().manual_seed(len(name))) + 0.5
                )
    return model


@pytest.mark.parametrize("position", ["pre", "post"])
def test_the_model_matches_the_handouts_equations(position):
    model = randomise_gains(small_model(norm_position=position)).eval()
    ids = torch.randint(300, (2, 16), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), reference_forward(model, ids), atol=1e-5, rtol=1e-4)


def test_post_norm_has_no_final_norm_and_pre_norm_has_one():
    from trainer.model import RMSNorm

    assert isinstance(small_model(norm_position="pre").final_norm, RMSNorm)
    post = small_model(norm_position="post")
    assert isinstance(post.final_norm, torch.nn.Identity)
    norms = [m for m in post.modules() if isinstance(m, RMSNorm)]
    assert len(norms) == 2 * SMALL["num_layers"]  # two per block, nothing else


def test_no_norm_has_no_norm_anywhere():
    from trainer.model import RMSNorm

    for position in ("pre", "post"):
        model = small_model(norm="none", norm_position=position)
        assert not [m for m in model.modules() if isinstance(m, (RMSNorm, torch.nn.LayerNorm))]
        assert all(p.dim() == 2 for p in model.parameters())


@pytest.mark.parametrize("ffn", ["swiglu", "silu"])
def test_feed_forwards_match_their_reference(ffn):
    f = small_model(ffn=ffn, d_ff=64).blocks[0].feed_forward
    x = torch.randn(3, 5, SMALL["d_model"], generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        if ffn == "swiglu":
            expected = reference_swiglu(x, f.w1.weight, f.w2.weight, f.w3.weight)
        else:
            assert f.w3 is None
            expected = reference_silu_mlp(x, f.w1.weight, f.w2.weight)
        torch.testing.assert_close(f(x), expected)


@pytest.mark.parametrize("d_model", [64, 128, 512])
def test_silu_is_three_halves_as_wide_as_swiglu_with_matched_parameters(d_model):
    from trainer.config import resolved_d_ff

    config = {**SMALL, "d_model": d_model, "num_heads": 4}
    swiglu = TransformerLM(ModelConfig(**config, ffn="swiglu"))
    silu = TransformerLM(ModelConfig(**config, ffn="silu"))
    d_ff = resolved_d_ff(ModelConfig(**config))
    assert d_ff % 64 == 0 and abs(d_ff - 8 * d_model / 3) <= 32
    assert swiglu.blocks[0].feed_forward.w1.out_features == d_ff
    assert silu.blocks[0].feed_forward.w1.out_features == 3 * d_ff // 2
    ffn_params = [
        sum(p.numel() for p in m.blocks[0].feed_forward.parameters()) for m in (swiglu, silu)
    ]
    assert ffn_params[0] == ffn_params[1] == 3 * d_model * d_ff
    assert swiglu.num_params() == silu.num_params()
