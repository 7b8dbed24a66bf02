"""A decoder-only Transformer language model (CS336 assignment 1) with the ablation switches.

Token embedding -> N blocks of causal self-attention and a feed-forward, each wrapped in a
residual connection and a norm -> final norm -> LM head. The config picks the norm (RMSNorm,
LayerNorm or none), its position (pre or post), the positions (RoPE, none, or learned), the
feed-forward (SwiGLU, or ungated SiLU / GELU with the same parameter count) and weight tying.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import ModelConfig, resolved_d_ff


class RMSNorm(nn.Module):
    """x / rms(x) * gain, computed in float32."""

    def __init__(self, d_model: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (normed * self.weight).to(x.dtype)


def make_norm(kind: str, d_model: int) -> nn.Module:
    if kind == "rmsnorm":
        return RMSNorm(d_model)
    if kind == "layernorm":
        return nn.LayerNorm(d_model)
    return nn.Identity()


class Rotary(nn.Module):
    """Rotary position embedding: rotates pairs (i, i + head_dim/2) of q and k by position."""

    def __init__(self, head_dim: int, context_length: int, theta: float):
        super().__init__()
        inv_freq = theta ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(context_length, dtype=torch.float32), inv_freq)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq_len = x.shape[-2]
        cos, sin = self.cos[:seq_len].to(x.dtype), self.sin[:seq_len].to(x.dtype)
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class Attention(nn.Module):
    """Causal multi-head self-attention with PyTorch's fused kernel."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.num_heads = config.num_heads
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=False)
        self.out = nn.Linear(config.d_model, config.d_model, bias=False)
        head_dim = config.d_model // config.num_heads
        self.rotary = (
            Rotary(head_dim, config.context_length, config.rope_theta)
            if config.positions == "rope"
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq_len, d_model = x.shape
        q, k, v = self.qkv(x).view(batch, seq_len, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.out(y.transpose(1, 2).reshape(batch, seq_len, d_model))


class FeedForward(nn.Module):
    """SwiGLU (w2(silu(w1 x) * w3 x)), or an ungated SiLU / GELU MLP 3/2 as wide."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        d_ff = resolved_d_ff(config)
        self.gated = config.ffn == "swiglu"
        hidden = d_ff if self.gated else 3 * d_ff // 2
        self.w1 = nn.Linear(config.d_model, hidden, bias=False)
        self.w3 = nn.Linear(config.d_model, hidden, bias=False) if self.gated else None
        self.w2 = nn.Linear(hidden, config.d_model, bias=False)
        self.activation = F.gelu if config.ffn == "gelu" else F.silu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.activation(self.w1(x))
        if self.w3 is not None:
            hidden = hidden * self.w3(x)
        return self.w2(hidden)


class Block(nn.Module):
    """Attention then feed-forward, each residual; norms before (pre) or after (post) the add."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.pre_norm = config.norm_position == "pre"
        self.norm1 = make_norm(config.norm, config.d_model)
        self.attention = Attention(config)
        self.norm2 = make_norm(config.norm, config.d_model)
        self.feed_forward = FeedForward(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pre_norm:
            x = x + self.attention(self.norm1(x))
            return x + self.feed_forward(self.norm2(x))
        x = self.norm1(x + self.attention(x))
        return self.norm2(x + self.feed_forward(x))


class TransformerLM(nn.Module):
    """Token ids (batch, seq) -> next-token logits (batch, seq, vocab)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = (
            nn.Embedding(config.context_length, config.d_model)
            if config.positions == "learned"
            else None
        )
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.num_layers))
        # A post-norm block already ends in a norm; only pre-norm needs a final one.
        pre = config.norm_position == "pre"
        self.final_norm = make_norm(config.norm if pre else "none", config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self._init_weights(config)
        if config.tie_weights:
            self.lm_head.weight = self.embedding.weight

    def _init_weights(self, config: ModelConfig) -> None:
        """Normal(0, init_std); residual output projections scaled by 1/sqrt(2 * layers)."""
        for name, param in self.named_parameters():
            if param.dim() < 2:
                continue
            std = config.init_std
            if name.endswith(("attention.out.weight", "feed_forward.w2.weight")):
                std /= math.sqrt(2 * config.num_layers)
            nn.init.normal_(param, mean=0.0, std=std)

    def num_params(self) -> int:
        """Trainable parameters, counting tied weights once."""
        return sum(p.numel() for p in self.parameters())

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)
        if self.position_embedding is not None:
            x = x + self.position_embedding.weight[: ids.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.final_norm(x))


@torch.no_grad()
def generate(
    model: TransformerLM,
    prompt: list[int],
    max_new_tokens: int,
    temperature: float,
    top_p: float,
    generator: torch.Generator,
    stop_token: int | None = None,
) -> list[int]:
    """Continue `prompt` by nucleus sampling (temperature 0: greedy); stops at `stop_token`."""
    device = next(model.parameters()).device
    ids = torch.tensor([prompt], dtype=torch.long, device=device)
    new: list[int] = []
    for _ in range(max_new_tokens):
        logits = model(ids[:, -model.config.context_length :])[0, -1].float().cpu()
        if temperature == 0:
            token = int(logits.argmax())
        else:
            token = _sample_top_p(torch.softmax(logits / temperature, dim=-1), top_p, generator)
        if token == stop_token:
            break
        new.append(token)
        ids = torch.cat((ids, torch.tensor([[token]], device=device)), dim=1)
    return new


def _sample_top_p(probs: torch.Tensor, top_p: float, generator: torch.Generator) -> int:
    """A token from the smallest set of most likely tokens whose probability reaches top_p."""
    sorted_probs, order = probs.sort(descending=True)
    outside = sorted_probs.cumsum(0) - sorted_probs >= top_p  # always keeps the first
    sorted_probs[outside] = 0.0
    choice = torch.multinomial(sorted_probs, 1, generator=generator)
    return int(order[choice])
