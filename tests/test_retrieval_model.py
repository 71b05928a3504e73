"""The retrieval helpers with the real (tiny) VideoCLIP model and processor."""

import torch
from tiny_videoclip import CAPTIONS, random_videos, tiny_model, tiny_processor

from modeling_videoclip.retrieval import embed_texts, embed_videos, retrieval_metrics, search


def test_helpers_embed_like_the_model_forward():
    model, processor = tiny_model(), tiny_processor()
    videos = random_videos(2, frames=20, size=240)
    with torch.no_grad():
        expected = model(**processor(text=CAPTIONS[:2], videos=videos))
    text_embeds = embed_texts(model, processor, CAPTIONS[:2], batch_size=1, progress=False)
    video_embeds = embed_videos(model, processor, videos, batch_size=1, progress=False)
    assert torch.allclose(text_embeds, expected.text_embeds, atol=1e-6)
    assert torch.allclose(video_embeds, expected.video_embeds, atol=1e-6)

    hits = search(video_embeds, embed_texts(model, processor, CAPTIONS[:2], progress=False), k=2)
    best = (expected.logits_per_text).argmax(dim=1)
    assert torch.equal(hits.indices[:, 0], best)
    metrics = retrieval_metrics(text_embeds, video_embeds, ks=(1,))
    ranks_of_true_video = (expected.logits_per_text > expected.logits_per_text.diag()[:, None]).sum(1) + 1
    assert metrics.text_to_video.recall[1] == 100.0 * (ranks_of_true_video == 1).float().mean().item()
