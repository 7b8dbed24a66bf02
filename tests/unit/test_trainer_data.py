"""Data: the story generator, the BPE cache, user files, and batches."""

import re

import numpy as np
import pytest
import torch

from trainer import data as data_module
from trainer.config import ConfigError, DataConfig, load_config
from trainer.data import get_batch, load_dataset
from trainer.stories import generate_stories


@pytest.mark.parametrize("style", ["rich", "plain"])
def test_stories_are_deterministic_per_seed_and_differ_across_seeds(style):
    assert generate_stories(50, 1, style) == generate_stories(50, 1, style)
    assert generate_stories(50, 1, style) != generate_stories(50, 2, style)
    stories = generate_stories(200, 0, style)
    assert len(set(stories)) == 200
    assert all(s.endswith((".", '!"')) and len(s.split()) > 50 for s in stories)


@pytest.mark.parametrize("style", ["rich", "plain"])
def test_story_pronouns_agree_with_the_character(style):
    for story in generate_stories(200, 3, style):
        first_sentence, second = story.split(". ")[:2]
        kind = first_sentence.split(" named ")[0].split()[-1]
        if kind in ("girl", "boy"):
            pronoun = "She" if kind == "girl" else "He"
            name = first_sentence.split(" named ")[1]
            assert second.startswith((pronoun, name)), story


def test_the_default_style_is_plain_and_rich_stories_bring_the_lost_thing_back():
    assert generate_stories(20, 0) == generate_stories(20, 0, "plain")
    assert DataConfig().story_style == "plain"
    for story in generate_stories(200, 4, "rich"):
        name = story.split(". ")[0].split(" named ")[1]
        assert story.count(name) >= 3, story
        # the thing found (its colour and noun) is the thing got back at the end
        found = re.search(r"(?:found|saw) (?:an? |\w+ )(\w+) ([\w-]+)[.]", story)
        colour, noun = found.groups()
        assert story.count(f"{colour} {noun[:3]}") >= 2, story


def _distinct_4grams(stories: list[str]) -> float:
    words = [s.split() for s in stories]
    grams = [tuple(w[i : i + 4]) for w in words for i in range(len(w) - 3)]
    return len(set(grams)) / len(grams)


def test_rich_stories_repeat_themselves_less_than_plain_ones():
    rich, plain = generate_stories(500, 0, "rich"), generate_stories(500, 0, "plain")
    assert _distinct_4grams(rich) > 1.5 * _distinct_4grams(plain)
    assert len(set(" ".join(rich).split())) > 1.5 * len(set(" ".join(plain).split()))


def test_each_story_style_is_its_own_cache_entry(tmp_path):
    plain = load_dataset(DataConfig(num_stories=100, cache_dir=str(tmp_path)), 300)
    rich = DataConfig(num_stories=100, cache_dir=str(tmp_path), story_style="rich")
    assert not np.array_equal(load_dataset(rich, 300).train, plain.train)
    assert len([p for p in tmp_path.iterdir() if not p.name.startswith(".")]) == 2
    with pytest.raises(ConfigError, match="data.story_style"):
        load_config("tiny", {"data.story_style": "fancy"})


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
