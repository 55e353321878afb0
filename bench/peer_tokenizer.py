"""An offline Hugging Face tokenizer for peer load tools (GuideLLM needs one; the hub is not
reachable here).

``build_tokenizer(directory, python)`` trains a tiny byte-level BPE (``tokenizers``) on a few
hundred synthetic sentences and saves it with
``transformers.PreTrainedTokenizerFast(...).save_pretrained(directory)``, so
``AutoTokenizer.from_pretrained(directory)`` loads it with no network. It runs in the peer's
own interpreter (``python``: the peer venv has ``tokenizers`` and ``transformers``; latlab
does not depend on them).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

WORDS = ("request stream token latency server client model answer prompt time first "
         "second queue worker network budget guard cache load rate error window metric "
         "sample quick brown fox jumps over the lazy dog while seven clocks tick in order "
         "alpha beta gamma delta value number result table row column price city river "
         "house music story people world market school policy energy system").split()

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def sentences(n: int = 400) -> list[str]:
    """``n`` deterministic synthetic sentences (6–17 words each) over a small vocabulary."""
    out = []
    for i in range(n):
        length = 6 + (i * 7) % 12
        words = [WORDS[(i * 31 + j * 17 + j * j) % len(WORDS)] for j in range(length)]
        out.append(" ".join(words).capitalize() + ("." if i % 3 else f", {i} times."))
    return out


SCRIPT = """
import json, sys
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

directory, corpus = sys.argv[1], json.loads(sys.stdin.read())
tok = Tokenizer(models.BPE(unk_token=None))
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
tok.decoder = decoders.ByteLevel()
trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>"],
                              initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
tok.train_from_iterator(corpus, trainer=trainer)
fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>",
                               bos_token="<|endoftext|>", unk_token="<|endoftext|>",
                               model_max_length=1048576)
fast.save_pretrained(directory)
"""


def build_tokenizer(directory: Path, python: str) -> Path:
    """Train and save the tokenizer into ``directory`` with the peer's ``python``."""
    directory.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **OFFLINE_ENV}
    done = subprocess.run([python, "-c", SCRIPT, str(directory)], input=json.dumps(sentences()),
                          capture_output=True, text=True, env=env, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"tokenizer build failed: {done.stderr.strip()[-1500:]}")
    return directory
