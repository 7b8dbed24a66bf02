"""Tokens for training: the embedded stories or the user's file -> uint16 arrays -> batches.

Text (the generated stories or a `.txt` file) is tokenised with a byte-level BPE trained on
it, and the tokenizer and token arrays are cached on disk, keyed by what produced them.
Several processes (Ray workers) may prepare the same cache at once, so each builds it in a
private folder and renames that into place: nobody ever sees a half-written cache.
Pre-tokenised `.bin` / `.npy` files (uint16, the CS336 format) are memory-mapped as they are.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from trainer import stories, story_cast
from trainer.config import ConfigError, DataConfig

END_OF_TEXT = "<|endoftext|>"
CACHE_VERSION = 1  # bump when the cached files' format changes (the story generator is hashed)


@dataclass
class Dataset:
    """Train and validation token arrays (memory-mapped) and the tokenizer, if there is one."""

    train: np.ndarray
    val: np.ndarray
    tokenizer: Tokenizer | None

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; without a tokenizer, the first validation token."""
        if self.tokenizer is None:
            return [int(self.val[0])]
        return self.tokenizer.encode(text).ids

    def decode(self, ids: list[int]) -> str:
        """Text of `ids`; without a tokenizer, the ids themselves."""
        if self.tokenizer is None:
            return " ".join(map(str, ids))
        return self.tokenizer.decode(ids)


def cache_root(data: DataConfig) -> Path:
    """`data.cache_dir`, else $ORCHESTRATE_CACHE, else ~/.cache/orchestrate."""
    root = data.cache_dir or os.environ.get("ORCHESTRATE_CACHE") or "~/.cache/orchestrate"
    return Path(root).expanduser()


def load_dataset(data: DataConfig, vocab_size: int) -> Dataset:
    """The dataset `data` describes, preparing and caching it first if needed."""
    if data.source == "stories":
        code = b"".join(
            Path(m.__file__).read_bytes() for m in (stories, stories.stories_rich, story_cast)
        )
        generator = hashlib.sha256(code).hexdigest()[:16]
        key = {"stories": data.num_stories, "seed": data.seed, "generator": generator}
        key["style"] = data.story_style
        return _load_text(data, vocab_size, key=key)
    path = Path(data.source).expanduser()
    if not path.is_file():
        raise ConfigError(f"data.source: file not found: {data.source!r} (or use 'stories')")
    if path.suffix in (".bin", ".npy"):
        return _load_tokens(path, data.val_fraction, vocab_size)
    stat = path.stat()
    key = {"file": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return _load_text(data, vocab_size, key=key)


def _load_tokens(path: Path, val_fraction: float, vocab_size: int) -> Dataset:
    """A pre-tokenised uint16 file split by position: the last `val_fraction` validates."""
    try:
        if path.suffix == ".npy":
            tokens = np.load(path, mmap_mode="r")
        else:
            tokens = np.memmap(path, dtype=np.uint16, mode="r")
    except (OSError, ValueError) as e:
        raise ConfigError(f"data.source: cannot read {path} as uint16 tokens ({e})") from None
    if tokens.dtype != np.uint16 or tokens.ndim != 1:
        raise ConfigError(
            f"data.source: {path} holds {tokens.dtype} {tokens.shape}, not uint16 1-D"
        )
    largest = int(tokens.max()) if len(tokens) else 0
    if largest >= vocab_size:
        raise ConfigError(f"model.vocab_size: {path} has token id {largest} >= {vocab_size}")
    split = int(len(tokens) * (1 - val_fraction))
    return Dataset(train=tokens[:split], val=tokens[split:], tokenizer=None)


def _load_text(data: DataConfig, vocab_size: int, key: dict) -> Dataset:
    """Tokenised text from the cache, building the cache entry first if it is missing."""
    key = {**key, "vocab_size": vocab_size, "val_fraction": data.val_fraction, "v": CACHE_VERSION}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    name = "stories" if data.source == "stories" else Path(data.source).stem
    folder = cache_root(data) / f"{name}-{digest}"
    if not (folder / "val.bin").exists():
        _build_cache(folder, data, vocab_size, key)
    return Dataset(
        train=np.memmap(folder / "train.bin", dtype=np.uint16, mode="r"),
        val=np.memmap(folder / "val.bin", dtype=np.uint16, mode="r"),
        tokenizer=Tokenizer.from_file(str(folder / "tokenizer.json")),
    )


def _build_cache(folder: Path, data: DataConfig, vocab_size: int, key: dict) -> None:
    """Train the BPE, tokenise, and publish the folder with one atomic rename."""
    documents = _documents(data)
    if len(documents) < 2:
        raise ConfigError(f"data.source: {data.source!r} has too little text to split")
    tokenizer = train_tokenizer(documents, vocab_size)
    num_val = max(1, round(len(documents) * data.val_fraction))
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        tokenizer.save(str(staging / "tokenizer.json"))
        _tokenise(tokenizer, documents[:-num_val]).tofile(staging / "train.bin")
        _tokenise(tokenizer, documents[-num_val:]).tofile(staging / "val.bin")
        (staging / "key.json").write_text(json.dumps(key, indent=1))
        try:
            os.rename(staging, folder)
        except OSError:
            if not (folder / "val.bin").exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _documents(data: DataConfig) -> list[str]:
    """The generated stories, or the user's text file cut into paragraphs."""
    if data.source == "stories":
        return stories.generate_stories(data.num_stories, data.seed, data.story_style)
    text = Path(data.source).expanduser().read_text(encoding="utf-8", errors="replace")
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    if len(paragraphs) < 20:  # too few paragraphs to split by: cut into 20 equal pieces
        step = max(1, len(text) // 20)
        paragraphs = [text[i : i + step] for i in range(0, len(text), step)]
    return paragraphs


def train_tokenizer(documents: list[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE with `vocab_size` entries (fewer if the text has fewer merges)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[END_OF_TEXT],
        show_progress=False,
    )
    tokenizer.train_from_iterator(documents, trainer)
    return tokenizer


def _tokenise(tokenizer: Tokenizer, documents: list[str]) -> np.ndarray:
    """All documents' ids, each followed by the end-of-text token, as one uint16 array."""
    end = tokenizer.token_to_id(END_OF_TEXT)
    encoded = tokenizer.encode_batch(documents)
    ids = [i for doc in encoded for i in (*doc.ids, end)]
    return np.array(ids, dtype=np.uint16)


def get_batch(
    tokens: np.ndarray, batch_size: int, context_length: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` random windows of `tokens`: inputs and next-token targets, int64 on CPU."""
    if len(tokens) <= context_length + 1:
        raise ConfigError(
            f"model.context_length: {context_length} is too long for {len(tokens)} tokens"
        )
    starts = torch.randint(len(tokens) - context_length - 1, (batch_size,), generator=generator)
    windows = starts.numpy()[:, None] + np.arange(context_length + 1)
    batch = torch.from_numpy(tokens[windows].astype(np.int64))
    return batch[:, :-1], batch[:, 1:]
