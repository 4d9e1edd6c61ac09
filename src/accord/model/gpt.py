"""A decoder-only transformer over music tokens (after nanoGPT's ``model.py``).

Pre-LayerNorm blocks, learned absolute positions, weights tied between the token embedding
and the output head, N(0, 0.02) initialisation with the residual projections scaled by
1/sqrt(2·n_layer) (GPT-2). Attention is PyTorch's fused ``scaled_dot_product_attention``.
Sampling keeps keys and values in a preallocated :class:`KVCache`, so each new token costs
one position's worth of compute.

Shapes: B batch, T time (tokens), C channels (``n_embd``), H heads, D = C / H, V vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
import torch.nn as nn
from torch.nn import functional as F


@dataclass(frozen=True)
class GPTConfig:
    """The network's shape.

    Attributes:
        vocab_size: token ids the embedding holds; the tokenizer's size rounded up to a multiple
            of 64 so the output matmul runs on aligned tiles (the extra rows are never targets).
        block_size: the longest context in tokens: ~20 s of four-part music at ~25 tokens/s.
        n_layer: transformer blocks.
        n_head: attention heads per block; D = n_embd / n_head stays at 64 in the larger presets.
        n_embd: channels of the residual stream.
        dropout: 0 by default: the demo data is small but runs are short, far from overfitting.
        bias: biases in Linear and LayerNorm; off, as in nanoGPT: a little faster, no worse.
    """

    vocab_size: int = 576
    block_size: int = 512
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    dropout: float = 0.0
    bias: bool = False

    def to_dict(self) -> dict[str, int | float | bool]:
        return asdict(self)


PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(block_size=128, n_layer=2, n_head=2, n_embd=64),  # tests: trains in seconds
    "mini": GPTConfig(block_size=256, n_layer=4, n_head=4, n_embd=128),  # 0.9M params: a slow or shared CPU
    "demo": GPTConfig(block_size=512, n_layer=4, n_head=4, n_embd=256),  # 3.4M params: minutes on a laptop CPU
    "small": GPTConfig(block_size=1024, n_layer=6, n_head=6, n_embd=384),  # 11M params: an hour on one GPU
    "base": GPTConfig(block_size=1024, n_layer=12, n_head=12, n_embd=768),  # 85M params: GPT-2 small's shape
}


def padded_vocab(n: int, multiple: int = 64) -> int:
    return (n + multiple - 1) // multiple * multiple


def device_auto() -> torch.device:
    """CUDA if present, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


class KVCache:
    """Keys and values of every position seen so far, for each layer, preallocated.

    Attributes:
        k, v: one (B, H, block_size, D) tensor per layer each.
        length: positions filled.
    """

    def __init__(self, config: GPTConfig, batch: int, *, device: torch.device, dtype: torch.dtype) -> None:
        shape = (batch, config.n_head, config.block_size, config.n_embd // config.n_head)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.dtype = dtype
        self.length = 0

    def reset(self) -> None:
        self.length = 0


class CausalSelfAttention(nn.Module):
    causal_bias: torch.Tensor

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if config.n_embd % config.n_head:
            msg = f"n_embd: {config.n_embd} is not a multiple of n_head={config.n_head}"
            raise ValueError(msg)
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.n_embd = config.n_embd
        self.dropout = config.dropout
        # additive causal mask (T, T): 0 on and below the diagonal, -inf above
        causal = torch.full((config.block_size, config.block_size), float("-inf")).triu(diagonal=1)
        self.register_buffer("causal_bias", causal, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)  # 3 × (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, D)
        # written out rather than F.scaled_dot_product_attention: on CPU (bf16) three batched
        # matmuls with an additive mask run 2-4× faster than the fused kernels, forward and backward
        att = torch.baddbmm(
            self.causal_bias[:T, :T], q.flatten(0, 1), k.flatten(0, 1).transpose(1, 2), alpha=q.size(-1) ** -0.5
        )  # (B·H, T, T)
        att = F.dropout(att.softmax(dim=-1), p=self.dropout, training=self.training)
        y = torch.bmm(att, v.flatten(0, 1)).view(B, self.n_head, T, C // self.n_head)  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()  # exact (erf): on CPU twice as fast as the tanh approximation
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C) → (B, T, 4C) → (B, T, C)


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))  # pre-LN: the residual stream is never normalised
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embedding
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight  # tied: input and output share one embedding
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: residual writes scaled so depth does not grow the stream
                torch.nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters; position embeddings left out by default (nanoGPT's convention; wte is the head)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding else n

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits for every position (B, T, V) and, with targets (B, T; -1 is ignored), the mean cross-entropy."""
        if idx.size(1) > self.config.block_size:
            msg = f"idx: {idx.size(1)} tokens; the model's context is {self.config.block_size}"
            raise ValueError(msg)
        pos = torch.arange(0, idx.size(1), dtype=torch.long, device=idx.device)  # (T,)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)  # (B, T, C)
        logits = self.lm_head(x)  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1), ignore_index=-1)
        return logits, loss

    def new_cache(self, batch: int = 1, dtype: torch.dtype | None = None) -> KVCache:
        """An empty cache; fp32 on a CPU (its half-precision attention kernels are slow), else the weights' dtype."""
        weight = self.lm_head.weight
        default = torch.float32 if weight.device.type == "cpu" else weight.dtype
        return KVCache(self.config, batch, device=weight.device, dtype=dtype or default)

    def forward_step(self, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Logits (B, V) for the token after ``idx`` (B, T), which continues what ``cache`` holds.

        The same computation as :meth:`forward`, with keys and values kept in ``cache``. It is
        written with functional calls on the blocks' weights: sampling adds one token at a time,
        and on a CPU the ~50 module calls per token would otherwise cost as much as the maths.
        """
        B, T = idx.size()
        C, H = self.config.n_embd, self.config.n_head
        start, end = cache.length, cache.length + T
        if end > self.config.block_size:
            msg = f"cache: {start} + {T} tokens exceed the model's context of {self.config.block_size}"
            raise ValueError(msg)
        x = F.embedding(idx, self.wte.weight) + self.wpe.weight[start:end]  # (B, T, C)
        # query i sees keys up to start + i; one new token sees every cached one
        mask = torch.ones(T, end, dtype=torch.bool, device=idx.device).tril(diagonal=start) if T > 1 else None
        for layer, (ln_1, ln_1_b, w_qkv, b_qkv, w_o, b_o, ln_2, ln_2_b, w_fc, b_fc, w_proj, b_proj) in enumerate(
            self._step_weights()
        ):
            h = F.layer_norm(x, (C,), ln_1, ln_1_b)
            qkv = F.linear(h, w_qkv, b_qkv)  # (B, T, 3C)
            if T == 1:  # the same split without a permute: (B, 1, 3C) is (B, 3, H, 1, D) in memory
                q, k, v = qkv.view(B, 3, H, 1, C // H).to(cache.dtype).unbind(1)  # 3 × (B, H, 1, D)
            else:
                q, k, v = (
                    qkv.view(B, T, 3, H, C // H).permute(2, 0, 3, 1, 4).to(cache.dtype).unbind(0)
                )  # 3 × (B, H, T, D)
            keys, values = cache.k[layer], cache.v[layer]  # (B, H, block_size, D)
            keys.narrow(2, start, T).copy_(k)
            values.narrow(2, start, T).copy_(v)
            y = F.scaled_dot_product_attention(q, keys.narrow(2, 0, end), values.narrow(2, 0, end), attn_mask=mask)
            y = y.transpose(1, 2).reshape(B, T, C).to(x.dtype)  # (B, T, C)
            x = x + F.linear(y, w_o, b_o)
            h = F.gelu(F.linear(F.layer_norm(x, (C,), ln_2, ln_2_b), w_fc, b_fc))  # (B, T, 4C)
            x = x + F.linear(h, w_proj, b_proj)
        cache.length = end
        x = F.layer_norm(x[:, -1], (C,), self.ln_f.weight, self.ln_f.bias)  # (B, C): only the last position
        return F.linear(x, self.lm_head.weight)  # (B, V)

    def _step_weights(self) -> list[tuple[Any, ...]]:
        """Each block's weights in the order :meth:`forward_step` uses them, gathered once per
        storage and dtype: a token's ~50 attribute lookups would otherwise cost ~10% of its time."""
        head = self.lm_head.weight
        key = (head.data_ptr(), head.dtype, head.device)
        cached = self.__dict__.get("_step_cache")
        if cached is None or cached[0] != key:
            weights = [
                (
                    *(b.ln_1.weight, b.ln_1.bias, b.attn.c_attn.weight, b.attn.c_attn.bias),
                    *(b.attn.c_proj.weight, b.attn.c_proj.bias, b.ln_2.weight, b.ln_2.bias),
                    *(b.mlp.c_fc.weight, b.mlp.c_fc.bias, b.mlp.c_proj.weight, b.mlp.c_proj.bias),
                )
                for b in cast(list[Block], list(self.h))
            ]
            self.__dict__["_step_cache"] = cached = (key, weights)
        return cached[1]

    def configure_optimizer(
        self, *, lr: float, weight_decay: float, betas: tuple[float, float] = (0.9, 0.95)
    ) -> torch.optim.AdamW:
        """AdamW; matrices decay, biases, norms and (1-D) gains do not (nanoGPT)."""
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=lr, betas=betas, foreach=True)
