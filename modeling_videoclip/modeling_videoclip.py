"""VideoCLIP: torchmultimodal's MUGEN video-text retrieval model (``examples/mugen/retrieval/video_clip.py``).

DistilBERT read at [CLS] and torchvision's S3D without its classifier, each followed by a ``Projection`` head to a
256-d joint space; embeddings are L2-normalised before their cosine similarity.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import S3D
from transformers import DistilBertModel, PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutput, BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .configuration_videoclip import VideoCLIPConfig


@dataclass
class VideoCLIPOutput(ModelOutput):
    r"""Output of [`VideoCLIPModel`].

    Args:
        loss (`()`, returned when `return_loss=True`): mean of the text->video and video->text cross-entropies.
        logits_per_video (`(video_batch, text_batch)`): `exp(logit_scale)` times each video-text cosine similarity.
        logits_per_text (`(text_batch, video_batch)`): the transpose of `logits_per_video`.
        text_embeds / video_embeds (`(batch, projection_dim)`): L2-normalised projected embeddings.
        text_model_output / video_model_output (`BaseModelOutputWithPooling`): each tower's output, whose
            `pooler_output` is the projected (not normalised) embedding.
    """

    loss: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    logits_per_text: torch.FloatTensor | None = None
    text_embeds: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    text_model_output: BaseModelOutputWithPooling | None = None
    video_model_output: BaseModelOutputWithPooling | None = None

    def to_tuple(self) -> tuple:
        return tuple(
            self[k] if k not in ("text_model_output", "video_model_output") else getattr(self, k).to_tuple()
            for k in self.keys()
        )


def contrastive_loss(text_embeds: torch.Tensor, video_embeds: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over (text i, video i) pairs, as torchmultimodal's ``contrastive_loss_with_temperature``
    (``BackpropType.GLOBAL``).

    Under ``torch.distributed`` this rank's rows are scored against the all-gathered global batch, labels offset by
    the lower ranks' batch sizes (``tests/dist_loss_check.py`` checks it under torchrun). No world-size rescaling:
    `_AllGather`'s backward SUMS every rank's gradient onto the rows' owner, so DDP's AVERAGE is the gradient of the
    rank-mean loss. Uneven batches weight the local loss by ``world_size * local_batch / global_batch``.

    Args:
        text_embeds / video_embeds: `(batch, dim)` L2-normalised embeddings of this process.
        logit_scale: scalar, the LOG of the multiplier (MUGEN's convention), already clamped.

    Returns:
        The mean of the text->video and video->text cross-entropies (distributed: this rank's share).
    """
    all_text, all_video, labels = _gather_embeddings_and_labels(text_embeds, video_embeds)
    scale = logit_scale.exp()
    logits_text = text_embeds @ all_video.T * scale
    logits_video = video_embeds @ all_text.T * scale
    loss = (F.cross_entropy(logits_text, labels) + F.cross_entropy(logits_video, labels)) / 2
    global_batch = all_text.shape[0]
    if global_batch != text_embeds.shape[0]:
        world_size = torch.distributed.get_world_size()
        if global_batch != world_size * text_embeds.shape[0]:  # uneven batches: weight by this rank's share
            loss = loss * (world_size * text_embeds.shape[0] / global_batch)
    return loss


class _AllGather(torch.autograd.Function):
    """All-gather whose backward sums every rank's gradient for its rows (torch.distributed.nn's is deprecated)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.rows, ctx.rank = x.shape[0], torch.distributed.get_rank()
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(torch.distributed.get_world_size())]
        torch.distributed.all_gather(parts, x)
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(grad)
        return grad[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]


def _gather_embeddings_and_labels(
    text_embeds: torch.Tensor, video_embeds: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The global text and video embeddings (rank order) and this rank's labels into them; uneven batches padded."""
    local_batch = text_embeds.shape[0]
    labels = torch.arange(local_batch, device=text_embeds.device)
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    if not distributed or torch.distributed.get_world_size() == 1:
        return text_embeds, video_embeds, labels
    sizes = _AllGather.apply(torch.tensor([local_batch], device=text_embeds.device)).tolist()
    max_batch = max(sizes)

    def gather(x: torch.Tensor) -> torch.Tensor:
        if max_batch != local_batch:
            x = F.pad(x, (0, 0, 0, max_batch - local_batch))
        parts = _AllGather.apply(x).split(max_batch)
        return torch.cat([part[:n] for part, n in zip(parts, sizes)], dim=0)

    return gather(text_embeds), gather(video_embeds), labels + sum(sizes[: torch.distributed.get_rank()])


class VideoCLIPProjection(nn.Module):
    """MUGEN's projection head, ``layer_norm(h + dropout(linear2(gelu(h))))`` with ``h = linear1(x)``; attribute
    names match the reference's ``Projection`` so checkpoints convert key for key."""

    def __init__(self, in_dim: int, out_dim: int, dropout: float):
        super().__init__()
        self.linear1 = nn.Linear(in_dim, out_dim, bias=False)
        self.gelu = nn.GELU()
        self.linear2 = nn.Linear(out_dim, out_dim, bias=False)
        self.drop = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(out_dim)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        projected = self.linear1(hidden)
        residual = self.drop(self.linear2(self.gelu(projected)))
        return self.layer_norm(projected + residual)


def s3d_pooled_size(num_frames: int, height: int, width: int) -> tuple[int, int, int]:
    """Size (T, H, W) of S3D's feature map before its final AvgPool3d((2, 7, 7)): the stem conv and two max-pools
    halve with ceil (time only twice; nested ceilings compose into one), the last max-pool halves with floor."""
    return math.ceil(num_frames / 4) // 2, math.ceil(height / 16) // 2, math.ceil(width / 16) // 2


class VideoCLIPVideoEncoder(nn.Module):
    """torchvision's S3D up to its average pool (the reference replaces its classifier with ``nn.Identity``).
    Input `(batch, channels, frames, height, width)`; output `(batch, 1024)`."""

    def __init__(self, config):
        super().__init__()
        s3d = S3D(norm_layer=partial(nn.BatchNorm3d, eps=config.batch_norm_eps, momentum=config.batch_norm_momentum))
        self.features = s3d.features
        self.avgpool = s3d.avgpool
        # Read and set by PreTrainedModel.gradient_checkpointing_enable(), with `_gradient_checkpointing_func`.
        self.gradient_checkpointing = False

    def forward(self, pixel_values: torch.Tensor) -> BaseModelOutputWithPooling:
        hidden = pixel_values
        if hidden.device.type == "cpu":
            # Performance: oneDNN runs S3D's 3D convolutions ~1.5x faster on channels-last activations, which the
            # layers keep, than on the processor's contiguous ones; same values up to float rounding (~1e-7).
            hidden = hidden.contiguous(memory_format=torch.channels_last_3d)
        for layer in self.features:
            if self.gradient_checkpointing and self.training and torch.is_grad_enabled():
                hidden = self._gradient_checkpointing_func(layer.__call__, hidden)
            else:
                hidden = layer(hidden)
        # avg_pool3d has no reduced-precision CPU kernel; pool in float32, then cast back.
        upcast = hidden.dtype in (torch.bfloat16, torch.float16) and hidden.device.type == "cpu"
        pooled = self.avgpool(hidden.float() if upcast else hidden).mean(dim=(2, 3, 4)).to(hidden.dtype)
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=pooled)


class VideoCLIPCheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fill the model; the message names it and the fix."""


class VideoCLIPPreTrainedModel(PreTrainedModel):
    """Weight initialisation and loading conventions shared by the VideoCLIP models."""

    config_class = VideoCLIPConfig
    config: VideoCLIPConfig
    base_model_prefix = "videoclip"
    main_input_name = "input_ids"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _no_split_modules = ["TransformerBlock", "SepInceptionBlock3D", "TemporalSeparableConv"]
    # Older transformers saved DistilBERT's position ids; they are recomputed, never needed.
    _keys_to_ignore_on_load_unexpected = [r"position_ids"]

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: str | os.PathLike, *args, allow_missing_weights: bool = False, **kwargs
    ):
        """`PreTrainedModel.from_pretrained`, refusing a checkpoint that leaves weights uninitialised.

        Args:
            allow_missing_weights: initialise missing weights randomly (with transformers' warning) instead of
                raising. Defaults to False: a checkpoint that lacks weights is almost always the wrong file, and
                random projections would give meaningless embeddings silently.

        Raises:
            VideoCLIPCheckpointError: weights are missing, or the weights file cannot be read (a corrupt or
                truncated ``model.safetensors``).
        """
        from safetensors import SafetensorError

        want_info = kwargs.pop("output_loading_info", False)
        name = os.fspath(pretrained_model_name_or_path)
        try:
            model, info = super().from_pretrained(name, *args, output_loading_info=True, **kwargs)
        except SafetensorError as error:
            raise VideoCLIPCheckpointError(
                f"Cannot read the weights of {name!r} (its model.safetensors: {error}); the file is corrupt or "
                f"incomplete: download or save it again."
            ) from error
        missing = sorted(info["missing_keys"])
        if missing and not allow_missing_weights:
            shown = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
            raise VideoCLIPCheckpointError(
                f"{name!r} leaves {len(missing)} weights of {cls.__name__} uninitialised ({shown}): it is not a "
                f"complete checkpoint of this model. Pass allow_missing_weights=True to initialise them randomly."
            )
        return (model, info) if want_info else model

    def _init_weights(self, module: nn.Module) -> None:
        """torch's default init, as torchvision's S3D and the reference's heads use; DistilBERT initialises itself."""
        if isinstance(module, (nn.Conv3d, nn.Linear)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                init.uniform_(module.bias, -bound, bound)
        elif isinstance(module, (nn.BatchNorm3d, nn.LayerNorm)):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            if isinstance(module, nn.BatchNorm3d):
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)
        elif isinstance(module, VideoCLIPModel):
            init.constant_(module.logit_scale, self.config.logit_scale_init_value)


class _TextTowerMixin:
    """The text tower: DistilBERT read at [CLS], then the projection head."""

    def _build_text_tower(self, config: VideoCLIPConfig) -> None:
        self.text_model = DistilBertModel._from_config(config.text_config)
        projection_dim, dropout = config.projection_dim, config.projection_dropout
        self.text_projection = VideoCLIPProjection(config.text_config.dim, projection_dim, dropout)

    def _encode_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, **kwargs
    ) -> BaseModelOutputWithPooling:
        _check_input_ids(input_ids, self.config)
        kwargs = _text_model_options(kwargs)
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long()
        elif not isinstance(attention_mask, torch.Tensor) or attention_mask.shape != input_ids.shape:
            shape = tuple(attention_mask.shape) if isinstance(attention_mask, torch.Tensor) else type(attention_mask)
            raise ValueError(f"`attention_mask` must be a tensor of the shape of `input_ids`, "
                             f"{tuple(input_ids.shape)}, got {shape}; pass the processor's attention_mask (or None).")
        outputs = None
        if _can_skip_padding(self.text_model, attention_mask, kwargs):
            try:
                hidden = _distilbert_without_padding(self.text_model, input_ids, attention_mask)
                outputs = BaseModelOutput(last_hidden_state=hidden)
            except (AttributeError, TypeError):  # a layout the check cannot see (attributes, signatures): plain path
                pass
        if outputs is None:
            outputs = self.text_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        return BaseModelOutputWithPooling(
            last_hidden_state=outputs.last_hidden_state, hidden_states=outputs.hidden_states,
            attentions=outputs.attentions, pooler_output=self.text_projection(outputs.last_hidden_state[:, 0, :]),
        )


class _VideoTowerMixin:
    """The video tower: S3D pooled features, then the projection head."""

    def _build_video_tower(self, config: VideoCLIPConfig) -> None:
        self.video_model = VideoCLIPVideoEncoder(config.video_config)
        projection_dim, dropout = config.projection_dim, config.projection_dropout
        self.video_projection = VideoCLIPProjection(config.video_config.hidden_size, projection_dim, dropout)

    def _encode_video(self, pixel_values_videos: torch.Tensor) -> BaseModelOutputWithPooling:
        _check_pixel_values(pixel_values_videos, self.config.video_config.num_channels)
        # The processor returns float32; a model loaded with dtype=bfloat16/float16 computes in its own dtype.
        weight_dtype = next(self.video_model.parameters()).dtype
        # The processor's layout is (B, T, C, H, W); S3D's is (B, C, T, H, W).
        outputs = self.video_model(pixel_values_videos.transpose(1, 2).to(weight_dtype))
        return BaseModelOutputWithPooling(
            last_hidden_state=outputs.last_hidden_state, pooler_output=self.video_projection(outputs.pooler_output)
        )


def _can_skip_padding(text_model: nn.Module, attention_mask: torch.Tensor, kwargs: dict) -> bool:
    """Whether `_distilbert_without_padding` is exact and gains something (eval, SDPA, no extra outputs, padding);
    never under torch.compile / torch.export (ONNX), whose graphs cannot hold its data-dependent token count."""
    if torch.compiler.is_compiling():
        return False
    if text_model.training or kwargs or text_model.config._attn_implementation != "sdpa":
        return False
    keep = attention_mask.bool()
    if keep.all() or not keep.any(dim=1).all():
        return False
    return _has_distilbert_layout(text_model)


def _has_distilbert_layout(text_model: nn.Module) -> bool:
    """Whether `text_model` is plain transformers DistilBERT, down to its Linear/LayerNorm, with no hooks to bypass."""
    from transformers.models.distilbert import modeling_distilbert as distilbert

    linears = [f"attention.{name}_lin" for name in ("q", "k", "v", "out")] + ["ffn.lin1", "ffn.lin2"]
    parts = {"": distilbert.TransformerBlock, "attention": distilbert.DistilBertSelfAttention, "ffn": distilbert.FFN,
             "sa_layer_norm": nn.LayerNorm, "output_layer_norm": nn.LayerNorm, **dict.fromkeys(linears, nn.Linear)}
    try:
        layers = [dict(layer.named_modules()) for layer in text_model.transformer.layer]
        plain = type(text_model) is distilbert.DistilBertModel and type(text_model.embeddings) is distilbert.Embeddings
    except (AttributeError, TypeError):
        return False
    hooks = [h for m in text_model.modules() for h in (*m._forward_hooks.values(), *m._forward_pre_hooks.values())]
    foreign_hooks = [hook for hook in hooks if getattr(hook, "__name__", "") != "output_capturing_hook"]
    same_classes = all(type(layer.get(name)) is kind for layer in layers for name, kind in parts.items())
    return plain and same_classes and not foreign_hooks and not any("forward" in vars(m) for m in text_model.modules())


def _distilbert_without_padding(
    text_model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> torch.Tensor:
    """DistilBERT's inference `last_hidden_state`, its per-token layers run on real tokens only (padding: zeros).

    Performance: a third of a MUGEN caption batch is padding; only the attention sees the padded layout.
    """
    batch, length = input_ids.shape
    hidden = text_model.embeddings(input_ids)  # (batch, length, dim), position embeddings of the padded layout
    dim = hidden.shape[-1]
    keep = attention_mask.bool()
    token_rows = keep.flatten().nonzero().squeeze(1)
    tokens = hidden.reshape(batch * length, dim).index_select(0, token_rows)
    key_mask = keep[:, None, None, :]  # (batch, 1, 1, length): attend to real tokens only

    def padded_heads(packed: torch.Tensor, heads: int) -> torch.Tensor:
        padded = packed.new_zeros(batch * length, dim).index_copy_(0, token_rows, packed)
        return padded.view(batch, length, heads, dim // heads).transpose(1, 2)

    for layer in text_model.transformer.layer:
        attention, ffn = layer.attention, layer.ffn
        linears = (attention.q_lin, attention.k_lin, attention.v_lin)
        query, key, value = (padded_heads(linear(tokens), attention.n_heads) for linear in linears)
        context = F.scaled_dot_product_attention(query, key, value, attn_mask=key_mask, scale=attention.scaling)
        context = context.transpose(1, 2).reshape(batch * length, dim).index_select(0, token_rows)
        tokens = layer.sa_layer_norm(attention.out_lin(context) + tokens)
        tokens = layer.output_layer_norm(ffn.lin2(ffn.activation(ffn.lin1(tokens))) + tokens)
    return hidden.new_zeros(batch * length, dim).index_copy_(0, token_rows, tokens).view(batch, length, dim)


_TEXT_MODEL_OPTIONS = frozenset({"output_attentions", "output_hidden_states"})
# Accepted and ignored: DistilBERT has no segment embeddings (BERT tokenizers return `token_type_ids`); outputs are
# always dataclasses (`return_dict`); Trainer passes `num_items_in_batch` to a forward taking **kwargs, and the
# contrastive loss is a batch mean that needs no count.
_IGNORED_INPUTS = frozenset({"token_type_ids", "return_dict", "num_items_in_batch"})


def _text_model_options(kwargs: dict) -> dict:
    """The options DistilBERT gets from `kwargs`; any name that is neither one nor ignored is an error, so that a
    misspelled argument (``return_los=True``) cannot vanish."""
    unknown = sorted(set(kwargs) - _TEXT_MODEL_OPTIONS - _IGNORED_INPUTS)
    if unknown:
        raise TypeError(f"Unknown argument(s) {unknown}; VideoCLIP takes input_ids, attention_mask, "
                        f"pixel_values_videos, return_loss, output_attentions and output_hidden_states.")
    return {key: value for key, value in kwargs.items() if key in _TEXT_MODEL_OPTIONS}


def _check_input_ids(input_ids: torch.Tensor, config: VideoCLIPConfig) -> None:
    if not isinstance(input_ids, torch.Tensor):
        raise TypeError(f"`input_ids` must be a torch.Tensor, got {type(input_ids).__name__}; use the processor.")
    if input_ids.dim() != 2:
        raise ValueError(f"`input_ids` must have shape (batch, sequence), got {tuple(input_ids.shape)}.")
    if input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"`input_ids` is empty (shape {tuple(input_ids.shape)}); pass at least one token.")
    max_positions = config.text_config.max_position_embeddings
    if input_ids.shape[1] > max_positions:
        raise ValueError(
            f"`input_ids` has {input_ids.shape[1]} tokens but DistilBERT takes at most {max_positions}; "
            f"tokenise with truncation=True (the processor's default)."
        )
    if torch.compiler.is_compiling():  # a check of the values would break a torch.compile / torch.export graph
        return
    vocab_size = config.text_config.vocab_size
    if input_ids.min() < 0 or input_ids.max() >= vocab_size:
        raise ValueError(
            f"`input_ids` holds ids outside the vocabulary [0, {vocab_size}): min {int(input_ids.min())}, "
            f"max {int(input_ids.max())}. Tokenise with this model's processor/tokenizer."
        )


def _check_pixel_values(pixel_values: torch.Tensor, num_channels: int) -> None:
    if not isinstance(pixel_values, torch.Tensor):
        raise TypeError(
            f"`pixel_values_videos` must be a torch.Tensor, got {type(pixel_values).__name__}; use the processor."
        )
    if pixel_values.dim() != 5 or pixel_values.shape[2] != num_channels:
        raise ValueError(
            f"`pixel_values_videos` must have shape (batch, frames, {num_channels}, height, width) as the "
            f"processor returns it, got {tuple(pixel_values.shape)}."
        )
    if pixel_values.shape[0] == 0:
        raise ValueError("`pixel_values_videos` holds no video (batch size 0).")
    if not pixel_values.is_floating_point():
        raise TypeError(
            f"`pixel_values_videos` must be floating point (normalised by the processor), got {pixel_values.dtype}."
        )
    if not torch.compiler.is_compiling() and not torch.isfinite(pixel_values).all():
        raise ValueError("`pixel_values_videos` holds NaN or infinite values; check the frames (the processor refuses "
                         "non-finite pixels) or what changed them after processing.")
    frames, height, width = pixel_values.shape[1], pixel_values.shape[3], pixel_values.shape[4]
    pooled = s3d_pooled_size(frames, height, width)
    if pooled[0] < 2 or pooled[1] < 7 or pooled[2] < 7:
        raise ValueError(
            f"Videos of {frames} frames at {height}x{width} are too small for S3D, which needs at least 13 frames "
            f"and 209x209 pixels (its last pooling window is 2x7x7); resize to 224x224 with 32 frames, as the "
            f"processor does by default."
        )


class VideoCLIPModel(_TextTowerMixin, _VideoTowerMixin, VideoCLIPPreTrainedModel):
    """VideoCLIP: both towers and the learnable logit scale.

    ```python
    >>> model = AutoModel.from_pretrained("<org>/videoclip-mugen", trust_remote_code=True)
    >>> processor = AutoProcessor.from_pretrained("<org>/videoclip-mugen", trust_remote_code=True)
    >>> inputs = processor(text=["Mugen jumps onto a ledge."], videos=[video], return_tensors="pt")
    >>> outputs = model(**inputs)
    >>> outputs.logits_per_video.softmax(dim=-1)
    ```
    """

    def __init__(self, config: VideoCLIPConfig):
        super().__init__(config)
        self._build_text_tower(config)
        self._build_video_tower(config)
        self.logit_scale = nn.Parameter(torch.tensor(float(config.logit_scale_init_value)))
        self.post_init()

    def get_text_features(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> BaseModelOutputWithPooling:
        """Text embeddings (transformers 5's `get_*_features` convention). In eval mode with SDPA attention (the
        default) a padded batch skips the padding in DistilBERT's per-token layers (~1.5x faster, same embeddings;
        `last_hidden_state` is then zero at padding positions).

        Args:
            input_ids: `(batch, sequence)` token ids from the processor.
            attention_mask: `(batch, sequence)`; None means `input_ids != config.pad_token_id`, as the reference.

        Returns:
            `BaseModelOutputWithPooling`: `pooler_output` is the PROJECTED, NOT normalised, `(batch, 256)` embedding,
            `last_hidden_state` is DistilBERT's.
        """
        return self._encode_text(input_ids, attention_mask, **kwargs)

    def get_video_features(self, pixel_values_videos: torch.Tensor) -> BaseModelOutputWithPooling:
        """Video embeddings (transformers 5's `get_*_features` convention).

        Args:
            pixel_values_videos: `(batch, frames, 3, height, width)` float videos from the processor.

        Returns:
            `BaseModelOutputWithPooling`: `pooler_output` is the PROJECTED, NOT normalised, `(batch, 256)` embedding,
            `last_hidden_state` is S3D's last feature map.
        """
        return self._encode_video(pixel_values_videos)

    def clamped_logit_scale(self) -> torch.Tensor:
        """Clamps `logit_scale` in place at `config.logit_scale_max` (log space, no minimum), as the
        reference's loss does before every call, and returns it."""
        with torch.no_grad():
            self.logit_scale.clamp_(max=self.config.logit_scale_max)
        return self.logit_scale

    def forward(
        self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
        pixel_values_videos: torch.Tensor | None = None, return_loss: bool | None = None, **kwargs,
    ) -> VideoCLIPOutput:
        """Similarity logits of texts and videos and, with `return_loss`, the contrastive loss over (text i, video i).

        Args:
            input_ids: `(text_batch, sequence)` token ids.
            attention_mask: optional; None derives it from `config.pad_token_id`.
            pixel_values_videos: `(video_batch, frames, 3, height, width)` from the processor.
            return_loss: compute the loss (needs as many texts as videos); default None, no loss.

        Returns:
            [`VideoCLIPOutput`].
        """
        if input_ids is None or pixel_values_videos is None:
            raise ValueError(
                "VideoCLIPModel needs both `input_ids` and `pixel_values_videos`; for one tower use "
                "`get_text_features` / `get_video_features`."
            )
        if return_loss and input_ids.shape[0] != pixel_values_videos.shape[0]:
            raise ValueError(
                f"`return_loss=True` pairs text i with video i, but got {input_ids.shape[0]} texts and "
                f"{pixel_values_videos.shape[0]} videos; pass as many texts as videos."
            )
        text_outputs = self._encode_text(input_ids, attention_mask, **kwargs)
        video_outputs = self._encode_video(pixel_values_videos)
        text_embeds = F.normalize(text_outputs.pooler_output, dim=-1)
        video_embeds = F.normalize(video_outputs.pooler_output, dim=-1)
        max_scale = self.config.logit_scale_max
        logit_scale = self.clamped_logit_scale() if return_loss else self.logit_scale.clamp(max=max_scale)
        logits_per_text = text_embeds @ video_embeds.T * logit_scale.exp()
        loss = contrastive_loss(text_embeds, video_embeds, logit_scale) if return_loss else None
        return VideoCLIPOutput(
            loss=loss, logits_per_video=logits_per_text.T, logits_per_text=logits_per_text, text_embeds=text_embeds,
            video_embeds=video_embeds, text_model_output=text_outputs, video_model_output=video_outputs,
        )


@dataclass
class VideoCLIPTextModelOutput(ModelOutput):
    """Output of [`VideoCLIPTextModelWithProjection`]: `text_embeds` are projected, NOT normalised."""

    text_embeds: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class VideoCLIPVideoModelOutput(ModelOutput):
    """Output of [`VideoCLIPVideoModelWithProjection`]: `video_embeds` are projected, NOT normalised."""

    video_embeds: torch.FloatTensor | None = None
    last_hidden_state: torch.FloatTensor | None = None


class VideoCLIPTextModelWithProjection(_TextTowerMixin, VideoCLIPPreTrainedModel):
    """The text tower alone (as CLIP's `CLIPTextModelWithProjection`); loads from a full VideoCLIP checkpoint,
    ignoring the video weights."""

    _keys_to_ignore_on_load_unexpected = [r"position_ids", r"^video_", r"^logit_scale"]

    def __init__(self, config: VideoCLIPConfig):
        super().__init__(config)
        self._build_text_tower(config)
        self.post_init()

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> VideoCLIPTextModelOutput:
        outputs = self._encode_text(input_ids, attention_mask, **kwargs)
        return VideoCLIPTextModelOutput(
            text_embeds=outputs.pooler_output, last_hidden_state=outputs.last_hidden_state,
            hidden_states=outputs.hidden_states, attentions=outputs.attentions,
        )


class VideoCLIPVideoModelWithProjection(_VideoTowerMixin, VideoCLIPPreTrainedModel):
    """The video tower alone; loads from a full VideoCLIP checkpoint, ignoring the text weights."""

    main_input_name = "pixel_values_videos"
    _keys_to_ignore_on_load_unexpected = [r"^text_", r"^logit_scale"]

    def __init__(self, config: VideoCLIPConfig):
        super().__init__(config)
        self._build_video_tower(config)
        self.post_init()

    def forward(self, pixel_values_videos: torch.Tensor) -> VideoCLIPVideoModelOutput:
        outputs = self._encode_video(pixel_values_videos)
        return VideoCLIPVideoModelOutput(
            video_embeds=outputs.pooler_output, last_hidden_state=outputs.last_hidden_state
        )


__all__ = [
    "VideoCLIPCheckpointError", "VideoCLIPModel", "VideoCLIPOutput", "VideoCLIPPreTrainedModel", "VideoCLIPProjection",
    "VideoCLIPTextModelOutput",
    "VideoCLIPTextModelWithProjection", "VideoCLIPVideoEncoder", "VideoCLIPVideoModelOutput",
    "VideoCLIPVideoModelWithProjection", "contrastive_loss", "s3d_pooled_size",
]
