"""Data: the story generator, the BPE cache, user files, and batches."""

import numpy as np
import pytest
import torch

from trainer import data as data_module
from trainer.config import ConfigError, DataConfig
from trainer.data import get_batch, load_dataset
from trainer.stories import generate_stories


def test_stories_are_deterministic_per_seed_and_differ_across_seeds():
    assert generate_stories(50, seed=1) == generate_stories(50, seed=1)
    assert generate_stories(50, seed=1) != generate_stories(50, seed=2)
    stories = generate_stories(200, seed=0)
    assert len(set(stories)) == 200
    assert all(s.endswith((".", '!"')) and len(s.split()) > 50 for s in stories)


def test_story_pronouns_agree_with_the_character():
    for story in generate_stories(200, seed=3):
        first_sentence, second = story.split(". ")[:2]
        kind = first_sentence.split(" named ")[0].split()[-1]
        if kind in ("girl", "boy"):
            pronoun = "She" if kind == "girl" else "He"
            name = first_sentence.split(" named ")[1]
            assert second.startswith((pronoun, name)), story


def test_stories_are_cached_and_reused(tmp_path, monkeypatch):
    config = DataConfig(num_stories=300, cache_dir=str(tmp_path))
    first = load_dataset(config, vocab_size=400)
    assert first.tokenizer.get_vocab_size() <= 400
    assert first.train.dtype == np.uint16 and len(first.train) > 10 * len(first.val) > 0
    text = "Once upon a time, there was a girl named Lily."
    assert first.decode(first.encode(text)) == text

    def no_regeneration(*args):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(data_module.stories, "generate_stories", no_regeneration)
    again = load_dataset(config, vocab_size=400)
    assert np.array_equal(again.train, first.train)
    with pytest.raises(AssertionError):  # another vocabulary is another cache entry
        load_dataset(config, vocab_size=500)


def test_environment_variable_sets_the_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ORCHESTRATE_CACHE", str(tmp_path / "env-cache"))
    load_dataset(DataConfig(num_stories=100), vocab_size=300)
    assert any((tmp_path / "env-cache").iterdir())


def test_losing_the_race_to_publish_the_cache_is_harmless(tmp_path):
    config = DataConfig(num_stories=100, cache_dir=str(tmp_path))
    load_dataset(config, vocab_size=300)
    [folder] = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    # A second process that built the same entry meanwhile: its rename fails, it keeps ours.
    data_module._build_cache(folder, config, 300, key={})
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]
    assert (folder / "train.bin").stat().st_size > 0


@pytest.mark.parametrize("suffix", [".bin", ".npy"])
def test_pre_tokenised_files_are_memory_mapped(tmp_path, suffix):
    tokens = np.arange(2000, dtype=np.uint16) % 700
    path = tmp_path / f"tokens{suffix}"
    if suffix == ".npy":
        np.save(path, tokens)
    else:
        tokens.tofile(path)
    dataset = load_dataset(DataConfig(source=str(path), val_fraction=0.1), vocab_size=700)
    assert len(dataset.train) == 1800 and len(dataset.val) == 200
    assert np.array_equal(dataset.val, tokens[1800:])
    with pytest.raises(ConfigError, match="model.vocab_size"):
        load_dataset(DataConfig(source=str(path)), vocab_size=500)


def test_a_text_file_gets_its_own_tokenizer(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(f"Paragraph {i}: the quick brown fox jumps." for i in range(100)))
    dataset = load_dataset(DataConfig(source=str(path), cache_dir=str(tmp_path)), 300)
    assert dataset.decode(dataset.encode("the quick brown fox")) == "the quick brown fox"
    assert len(dataset.val) > 0


def test_a_missing_file_names_data_source(tmp_path):
    with pytest.raises(ConfigError, match="data.source: file not found"):
        load_dataset(DataConfig(source=str(tmp_path / "missing.txt")), 300)


def test_batches_are_shifted_windows_drawn_by_the_generator():
    tokens = np.arange(1000, dtype=np.uint16)
    x, y = get_batch(tokens, 4, 16, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 16) and x.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)
    again, _ = get_batch(tokens, 4, 16, torch.Generator().manual_seed(0))
    other, _ = get_batch(tokens, 4, 16, torch.Generator().manual_seed(1))
    assert torch.equal(x, again) and not torch.equal(x, other)
