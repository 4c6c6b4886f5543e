"""A tiny, randomly initialised InternVL-class vision-language model built offline and saved
to a folder the way the real HF-native ("-hf") checkpoints are: config, weights, tokenizer with
InternVL's image tokens, the image processor config, a processor config (processor class and
image_seq_length, as InternVLProcessor.save_pretrained writes it) and the image-aware chat
template of the "-hf" conversions, which writes <IMG_CONTEXT> for each image item. The real
loading and generate code runs on it in well under a second; with torchvision installed the
stock AutoProcessor loads it too."""

from __future__ import annotations

import json
from pathlib import Path

from tiny_lm import seeded

SPECIAL_TOKENS = [
    "<unk>",
    "<s>",
    "</s>",
    "<pad>",
    "<img>",
    "</img>",
    "<IMG_CONTEXT>",
    "<video>",
    "<|im_start|>",
    "<|im_end|>",
]
# the chat template of the InternVL "-hf" checkpoints: one <IMG_CONTEXT> per image item, which the
# processor (or the backend) expands to <img> + <IMG_CONTEXT> x image_seq_length x tiles + </img>
INTERNVL_CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
)
# a text-only template (what the tokenizer of some conversions carries): the backend then writes
# the image placeholders into the text itself
TEXT_ONLY_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHAT_TEMPLATE = INTERNVL_CHAT_TEMPLATE


def build_tiny_internvl(
    folder: Path,
    *,
    hidden: int = 16,
    layers: int = 1,
    image_size: int = 28,
    chat_template: str = INTERNVL_CHAT_TEMPLATE,
) -> Path:
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    tokenizer = internvl_tokenizer(chat_template)
    config = InternVLConfig(
        vision_config=dict(
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            image_size=[image_size, image_size],
            patch_size=[14, 14],
            initializer_range=1.0,
        ),
        text_config=dict(
            model_type="qwen2",
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=2,
            num_key_value_heads=1,
            vocab_size=len(tokenizer),
            max_position_embeddings=4096,
            initializer_range=1.0,
        ),  # large random weights: the output depends on the input
        image_token_id=tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>"),
        downsample_ratio=0.5,
    )
    return save_internvl_folder(folder, seeded(InternVLForConditionalGeneration, config), tokenizer, max_tiles=4)


def internvl_tokenizer(
    chat_template: str = INTERNVL_CHAT_TEMPLATE, *, corpus: list[str] | None = None, vocab_size: int = 400
):
    """A small byte-level BPE with InternVL's special tokens (<img>, </img>, <IMG_CONTEXT>, <video>),
    trained on `corpus` (default: a few JSON-ish lines)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator(
        corpus
        or ['{"frames": [{"scene": {"number": 1, "name": "park"}, "people": []}]}', "Describe each image as JSON."]
        * 10,
        trainer,
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={
            "start_image_token": "<img>",
            "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>",
            "video_token": "<video>",
        },
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def save_internvl_folder(folder: Path, model, tokenizer, *, max_tiles: int = 12) -> Path:
    """An InternVL model and its tokenizer saved as an "-hf" checkpoint folder: weights, config,
    tokenizer and chat template, image processor config and processor config."""
    from transformers import GotOcr2ImageProcessorPil

    config = model.config
    vision = config.vision_config
    image_size = vision.image_size[0] if isinstance(vision.image_size, (list, tuple)) else vision.image_size
    patch_size = vision.patch_size[0] if isinstance(vision.patch_size, (list, tuple)) else vision.patch_size
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(folder)
    image_processor = GotOcr2ImageProcessorPil(
        size={"height": image_size, "width": image_size}, crop_to_patches=False, max_patches=max_tiles
    )
    image_processor.save_pretrained(folder)
    image_seq_length = int((image_size // patch_size) ** 2 * config.downsample_ratio**2)
    write_internvl_processor_config(folder, image_processor.to_dict(), image_seq_length, image_size)
    model.save_pretrained(folder)
    return folder


def write_internvl_processor_config(
    folder: Path, image_processor: dict, image_seq_length: int, image_size: int
) -> None:
    """processor_config.json as InternVLProcessor.save_pretrained writes it (transformers 5),
    written by hand: building the stock processor needs torchvision."""
    image_processor = {k: v for k, v in image_processor.items() if not k.startswith("_")}
    image_processor["image_processor_type"] = "GotOcr2ImageProcessor"
    video_processor = {
        key: image_processor[key]
        for key in (
            "do_convert_rgb",
            "do_normalize",
            "do_rescale",
            "do_resize",
            "image_mean",
            "image_std",
            "resample",
            "rescale_factor",
        )
    }
    video_processor.update(
        {
            "do_sample_frames": False,
            "initial_shift": True,
            "return_metadata": False,
            "size": {"height": image_size, "width": image_size},
            "video_processor_type": "InternVLVideoProcessor",
        }
    )
    config = {
        "image_processor": image_processor,
        "image_seq_length": image_seq_length,
        "processor_class": "InternVLProcessor",
        "video_processor": video_processor,
    }
    (folder / "processor_config.json").write_text(
        json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


LLAVA_CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% else %}{{ c['text'] }}{% endif %}{% endfor %}\n"
    "{% endfor %}{% if add_generation_prompt %}assistant: {% endif %}"
)


def build_tiny_llava(folder: Path, *, hidden: int = 16, image_size: int = 28) -> Path:
    """A tiny LLaVA whose stock processor loads without torchvision: the backend's generic
    (AutoProcessor) path."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        CLIPImageProcessorPil,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        ['describe the image as JSON {"frames": []}'] * 5,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<unk>", "<s>", "</s>", "<pad>", "<image>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    image_processor = CLIPImageProcessorPil(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        image_token="<image>",
        chat_template=LLAVA_CHAT_TEMPLATE,
        num_additional_image_tokens=1,
    )
    config = LlavaConfig(
        vision_config=CLIPVisionConfig(
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=14,
            projection_dim=hidden,
        ),
        text_config=LlamaConfig(
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            vocab_size=len(tokenizer),
            max_position_embeddings=2048,
            initializer_range=1.0,
        ),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_select_strategy="default",
        vision_feature_layer=-1,
    )
    model = seeded(LlavaForConditionalGeneration, config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    processor.save_pretrained(folder)
    model.save_pretrained(folder)
    return folder
