"""VideoCLIPProcessor: tokenisation as the reference's BertTextTransform, truncation, errors, round trip."""

import pytest
import torch
from tiny_videoclip import bert_vocab_path, random_videos

from modeling_videoclip import VideoCLIPProcessor, VideoCLIPVideoProcessor
from modeling_videoclip.tokenization import tokenizer_from_vocab


@pytest.fixture(scope="module")
def processor():
    tokenizer = tokenizer_from_vocab(bert_vocab_path())
    return VideoCLIPProcessor(video_processor=VideoCLIPVideoProcessor(), tokenizer=tokenizer)


def test_tokenisation_equals_reference_ids(processor):
    # The reference's BertTextTransform output for this caption (see the reference notes).
    out = processor(text=["Mugen jumps onto a ledge.", "MUGEN"])
    assert out["input_ids"][0].tolist() == [101, 14757, 2368, 14523, 3031, 1037, 18283, 1012, 102]
    assert out["input_ids"][1].tolist()[:4] == [101, 14757, 2368, 102]  # lower-cased like the reference
    assert out["input_ids"][1].tolist()[4:] == [0] * 5  # padded with 0 to the longest text
    assert out["attention_mask"][1].tolist() == [1] * 4 + [0] * 5
    assert "token_type_ids" not in out


def test_long_texts_are_truncated_at_512_tokens(processor):
    out = processor(text="coin " * 600)
    assert out["input_ids"].shape == (1, 512)
    assert out["input_ids"][0, -1].item() == 102  # [SEP] kept


def test_text_and_videos_together(processor):
    out = processor(text=["a", "b"], videos=random_videos(2, frames=8, size=64))
    assert set(out) == {"input_ids", "attention_mask", "pixel_values_videos"}
    assert out["pixel_values_videos"].shape == (2, 32, 3, 224, 224)


@pytest.mark.parametrize(
    "text, error, message",
    [("", ValueError, "empty"), (["ok", "   "], ValueError, r"position\(s\) \[1\]"), ([], ValueError, "empty list"),
     ([1, 2], TypeError, "list of strings")],
)
def test_bad_texts(processor, text, error, message):
    with pytest.raises(error, match=message):
        processor(text=text)


def test_needs_text_or_videos(processor):
    with pytest.raises(ValueError, match="Pass `text`, `videos` or both"):
        processor()


def test_round_trip(tmp_path, processor):
    processor.save_pretrained(tmp_path)
    loaded = VideoCLIPProcessor.from_pretrained(tmp_path)
    texts, videos = ["Mugen collects a gem."], random_videos(1, frames=40, size=256)
    a, b = processor(text=texts, videos=videos), loaded(text=texts, videos=videos)
    for key in a:
        assert torch.equal(a[key], b[key]), key
