"""A small CLIP: ViT image tower (with a convolutional stem), causal text transformer
pooled at the end-of-text token, linear projections into a shared space and a learned
temperature (Radford et al. 2021).

The text tower reads ids from the real CLIP BPE tokenizer (vocabulary 49,408). Only the
few dozen tokens of the synthetic domain are ever trained, so the token table is pruned:
a fixed lookup maps every CLIP id to a row of a small table (row 0 for all other ids).
That keeps the package small while the engine feeds it exactly what it feeds ViT-B/32.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408


class Attention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(c // self.heads))
        if mask is not None:
            att = att + mask
        att = att.softmax(dim=-1)
        return self.out((att @ v).transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = Attention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), mask)
        return x + self.mlp(self.ln_2(x))


class ConvStem(nn.Module):
    """Patchify in three small convolutions instead of one large-kernel projection
    (Xiao et al. 2021, "Early convolutions help transformers see better"): the same
    token grid, far quicker to train on a CPU budget. For a patch of P pixels: a P/4
    patchify into 32 channels, a 3x3 stride-2 convolution into 64, a 2x2 stride-2 one
    into the width, with batch norm (folded into the convolutions at inference).
    `pool` > 1 average-pools the input first."""

    def __init__(self, width: int, patch: int, pool: int = 1):
        super().__init__()
        first = patch // 4
        layers: list[nn.Module] = [nn.AvgPool2d(pool)] if pool > 1 else []
        layers += [
            nn.Conv2d(3, 32, first, stride=first),
            nn.BatchNorm2d(32),
            nn.GELU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.GELU(),
            nn.Conv2d(64, width, 2, stride=2),
        ]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class VisionTower(nn.Module):
    def __init__(self, image_size: int, patch: int, width: int, layers: int, heads: int, dim: int, pool: int = 1):
        super().__init__()
        self.conv1 = ConvStem(width, patch // pool, pool)
        scale = width**-0.5
        self.class_embedding = nn.Parameter(scale * torch.randn(width))
        self.positional_embedding = nn.Parameter(scale * torch.randn((image_size // patch) ** 2 + 1, width))
        self.ln_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(scale * torch.randn(width, dim))

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.conv1(pixel_values).flatten(2).transpose(1, 2)  # [b, grid*grid, width]
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x)
        for blk in self.blocks:
            x = blk(x)
        return self.ln_post(x[:, 0]) @ self.proj


class TextTower(nn.Module):
    def __init__(self, token_ids: list[int], width: int, layers: int, heads: int, dim: int):
        super().__init__()
        remap = torch.zeros(VOCAB_SIZE, dtype=torch.long)
        remap[torch.tensor(token_ids)] = torch.arange(1, len(token_ids) + 1)
        self.register_buffer("remap", remap)
        self.token_embedding = nn.Embedding(len(token_ids) + 1, width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        self.positional_embedding = nn.Parameter(0.01 * torch.randn(CONTEXT_LENGTH, width))
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(layers)])
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(width**-0.5 * torch.randn(width, dim))
        self.register_buffer("causal", torch.full((CONTEXT_LENGTH, CONTEXT_LENGTH), float("-inf")).triu(1))

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        n = input_ids.shape[1]
        x = self.token_embedding(self.remap[input_ids]) + self.positional_embedding[:n]
        mask = self.causal[:n, :n]
        for blk in self.blocks:
            x = blk(x, mask)
        x = self.ln_final(x)
        # Pool at the end-of-text token: it has the largest id (49407), as in CLIP.
        eot = x[torch.arange(x.shape[0]), input_ids.argmax(dim=-1)]
        return eot @ self.text_projection


class TinyClip(nn.Module):
    def __init__(self, cfg: dict, token_ids: list[int]):
        super().__init__()
        self.cfg = cfg
        self.visual = VisionTower(cfg["image_size"], cfg["patch"], cfg["v_width"], cfg["v_layers"], cfg["v_heads"], cfg["dim"], cfg.get("pool", 1))
        self.text = TextTower(token_ids, cfg["t_width"], cfg["t_layers"], cfg["t_heads"], cfg["dim"])
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.visual(x), dim=-1)

    def encode_text(self, ids: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text(ids), dim=-1)
