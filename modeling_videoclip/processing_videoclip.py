"""VideoCLIP's processor: the DistilBERT (bert-base-uncased WordPiece) tokenizer plus the video processor."""

from __future__ import annotations

from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

MAX_TEXT_TOKENS = 512  # DistilBERT's position embeddings


class VideoCLIPProcessor(ProcessorMixin):
    r"""Tokenises texts and processes videos for [`VideoCLIPModel`] in one call.

    Tokenisation equals the reference's `BertTextTransform` (lower-cased bert-base-uncased WordPiece, `[CLS] ...
    [SEP]`, padded with 0 to the longest text), except that texts over 512 tokens are truncated, keeping `[SEP]`.

    Args:
        video_processor ([`VideoCLIPVideoProcessor`]): the video processor.
        tokenizer ([`DistilBertTokenizer`]): a bert-base-uncased WordPiece tokenizer.
    """

    def __init__(self, video_processor=None, tokenizer=None, **kwargs):
        super().__init__(video_processor, tokenizer, **kwargs)

    def __call__(
        self, text: str | list[str] | None = None, videos=None, return_tensors: str | None = "pt",
        padding: bool | str = "longest", truncation: bool = True, max_length: int | None = MAX_TEXT_TOKENS,
        **video_kwargs,
    ) -> BatchFeature:
        """Prepares texts and/or videos.

        Args:
            text: one text or a list of texts.
            videos: one video or a list of videos, as [`VideoCLIPVideoProcessor`] accepts them.
            return_tensors: "pt" (default) for tensors.
            padding: "longest" (default), the reference's padding.
            truncation / max_length: truncate at 512 tokens (DistilBERT's limit) by default.
            **video_kwargs: passed to the video processor (e.g. `num_frames`).

        Returns:
            `BatchFeature` with `input_ids` and `attention_mask` (texts) and `pixel_values_videos` (videos).
        """
        if text is None and videos is None:
            raise ValueError("Pass `text`, `videos` or both to the VideoCLIP processor.")
        data = {}
        if text is not None:
            encoded = self.tokenizer(
                _check_texts(text), padding=padding, truncation=truncation, max_length=max_length,
                return_tensors=return_tensors, return_token_type_ids=False,
            )
            data.update(encoded)
        if videos is not None:
            data.update(self.video_processor(videos, return_tensors=return_tensors, **video_kwargs))
        return BatchFeature(data=data)

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values_videos"]


def _check_texts(text) -> list[str]:
    texts = [text] if isinstance(text, str) else text
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"`text` must be a string or a list of strings, got {type(text).__name__}.")
    if not texts:
        raise ValueError("`text` is an empty list; pass at least one text.")
    empty = [i for i, t in enumerate(texts) if not t.strip()]
    if empty:
        raise ValueError(f"Text(s) at position(s) {empty} are empty; every caption needs at least one word.")
    return list(texts)


__all__ = ["VideoCLIPProcessor", "MAX_TEXT_TOKENS"]
