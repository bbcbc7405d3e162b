#!/usr/bin/env python3
"""An exported flashnas model in Hugging Face transformers agrees with flashnas.

Trains configs/arch/every-op-tiny.json (meta tokens and every registered
operator: attention, sliding-window attention, Mamba2, DeltaNet, Gated DeltaNet,
GLA, LFM2's gated short convolution, RWKV-7, FFN; chunk 16, window 8) briefly on
a fixed text, the Python tutorial (long enough that greedy text varies), exports it with `flashnas export --model`, loads it
with AutoModelForCausalLM / AutoTokenizer (trust_remote_code) and checks:
  - the tokenizer gives the bytes of the text, and decodes them back;
  - the logits at every position of a 106-token prompt (not a multiple of the
    chunk) agree with `flashnas eval --logits` within 1e-4;
  - a prefill followed by one-token steps (the recurrent forms) gives the
    logits of the whole prompt at once (the chunked forms) within 1e-4;
  - greedy generate() gives the text `flashnas generate --temperature 0` does;
  - the loss over a text file, in the windows `flashnas eval` uses, agrees with
    its figure within 1e-5;
  - damaged folders (a renamed tensor, a config of a newer format version, a
    tokenizer that is not the model's) are refused by both loaders, each
    naming what is wrong;
  - a model with a SentencePiece tokenizer (`flashnas data tokenizer`)
    exports a tokenizer.json that AutoTokenizer loads and that encodes code,
    JSON and text (newlines, indentation, runs of spaces, non-ASCII) to the
    ids flashnas gives, and decodes them back to the text.
Prints load time and ms per generated token next to flashnas generate's
(reported, not asserted). Usage: test_hf_export.py FLASHNAS_BINARY SOURCE_DIR
"""
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file, save_file

FLASHNAS, SOURCE = sys.argv[1], sys.argv[2]
PROMPT = ("The for statement in Python differs a bit from what you may be used to in C or Pascal. "
          "It iterates over")
failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)


def flashnas(*args):
    r = subprocess.run([FLASHNAS, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"flashnas {' '.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


def flashnas_fails(args, *needles):
    """flashnas exits 2 and its message holds every needle."""
    r = subprocess.run([FLASHNAS, *args], capture_output=True, text=True)
    return r.returncode == 2 and all(n in r.stderr for n in needles), r.stderr.strip()


def transformers_fails(folder, *needles):
    """Loading in transformers raises ValueError whose message holds every needle."""
    try:
        transformers.AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True)
    except ValueError as e:
        return all(n in str(e) for n in needles), str(e)
    return False, "loaded without an error"


def damaged_folders(tmp, hf, corpus):
    def copy(name):
        d = os.path.join(tmp, name)
        shutil.copytree(hf, d)
        return d

    def edit_config(d, fn):
        path = os.path.join(d, "config.json")
        cfg = json.load(open(path, encoding="utf-8"))
        fn(cfg)
        json.dump(cfg, open(path, "w", encoding="utf-8"))

    # A renamed tensor.
    d = copy("renamed")
    w = load_file(os.path.join(d, "model.safetensors"))
    w["norm.scale"] = w.pop("norm.weight")
    save_file(w, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    ok, msg = transformers_fails(d, "missing: norm.weight", "not in the architecture: norm.scale")
    check(ok, f"transformers refuses a renamed tensor, naming both names ({msg})")
    ok, msg = flashnas_fails(["eval", "--model", d, "--logits", "x", "--out", os.path.join(tmp, "x.npy")], "norm")
    check(ok, f"flashnas refuses it too, naming the tensor ({msg})")
    # A config of a newer format version.
    d = copy("newer")
    edit_config(d, lambda c: c.update(format="flashnas.checkpoint/2"))
    ok, msg = transformers_fails(d, "'format'", "flashnas.checkpoint/2")
    check(ok, f"transformers refuses a newer format version ({msg})")
    ok, msg = flashnas_fails(["eval", "--model", d, "--logits", "x", "--out", os.path.join(tmp, "x.npy")],
                             "field \"format\"", "flashnas.checkpoint/2")
    check(ok, f"flashnas refuses it too ({msg})")
    # A tokenizer that is not the model's: a byte-level tokenizer.json of another
    # size; a SentencePiece model other than the one config.json records.
    d = copy("tokjson")
    tj = json.load(open(os.path.join(d, "tokenizer.json"), encoding="utf-8"))
    tj["model"]["vocab"]["<extra>"] = 256
    json.dump(tj, open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8"))
    ok, msg = transformers_fails(d, "tokenizer.json has 257 tokens")
    check(ok, f"transformers refuses a tokenizer.json of another vocabulary ({msg})")
    d = copy("othersp")
    flashnas("data", "tokenizer", "--input", corpus, "--vocab-size", "500", "--out", os.path.join(d, "tokenizer.model"))
    edit_config(d, lambda c: c.update(tokenizer={"type": "sentencepiece", "model": "tokenizer.model", "vocab_size": 500,
                                                 "sha256": "0" * 64}))
    ok, msg = transformers_fails(d, "tokenizer.model has SHA-256")
    check(ok, f"transformers refuses a SentencePiece model that is not the recorded one ({msg})")
    ok, msg = flashnas_fails(["eval", "--model", d, "--logits", "x", "--out", os.path.join(tmp, "x.npy")],
                             "tokenizer.model: SHA-256")
    check(ok, f"flashnas refuses it too ({msg})")


SP_TEXTS = [
    "def main():\n    x = {\"a\": [1, 2, 3]}\n\treturn x  # done\n",
    '{"name": "get_weather", "arguments": {"city": "Paris", "days": 3}}\n',
    "  two leading spaces, a trailing one \n\nthen a blank line and  double  spaces",
    "unicode: caf\u00e9, na\u00efve, \u6771\u4eac, \U0001f642",
    "x",
]


def sentencepiece_export(tmp):
    """A SentencePiece model's tokenizer.json gives flashnas's ids through AutoTokenizer."""
    d = os.path.join(tmp, "sp")
    corpus = os.path.join(d, "corpus")
    os.makedirs(corpus)
    for name, src in (("readme.txt", "README.md"), ("code.txt", "scripts/gen_docs.py"),
                      ("arch.txt", "configs/arch/demo-hybrid.json"), ("config.txt", "configs/demo.toml")):
        shutil.copy(os.path.join(SOURCE, src), os.path.join(corpus, name))
    model, tokens, arch, run, hf = (os.path.join(d, n) for n in ("tok.model", "c.tokens", "arch.json", "run", "hf"))
    flashnas("data", "tokenizer", "--input", corpus, "--vocab-size", "600", "--out", model)
    flashnas("data", "prepare", "--input", corpus, "--tokenizer", model, "--out", tokens)
    a = json.load(open(os.path.join(SOURCE, "configs/arch/demo-tiny.json"), encoding="utf-8"))
    a["vocab_size"] = 600
    json.dump(a, open(arch, "w", encoding="utf-8"))
    flashnas("train", "--arch", arch, "--data", tokens, "--tokens", "4096", "--batch-size", "2", "--seq-len", "64",
             "--threads", "2", "--quiet", "--out", run)
    flashnas("export", "--model", run, "--out", hf)
    tok = transformers.AutoTokenizer.from_pretrained(hf, trust_remote_code=True)
    same = decoded = 0
    for text in SP_TEXTS:
        out = os.path.join(d, "l.safetensors")
        flashnas("eval", "--model", hf, "--logits", text, "--out", out, "--threads", "1")
        with safe_open(out, "pt") as f:
            ours = [int(t) for t in f.metadata()["tokens"].split(",")]
        theirs = tok(text).input_ids
        same += ours == theirs
        decoded += tok.decode(theirs) == text
        if ours != theirs:
            print(f"      {text!r}: flashnas {ours[:16]}..., AutoTokenizer {theirs[:16]}...")
    check(same == len(SP_TEXTS), f"AutoTokenizer gives flashnas's SentencePiece ids on {same} of {len(SP_TEXTS)} texts "
                                 "(code, JSON, whitespace, non-ASCII)")
    check(decoded == len(SP_TEXTS), f"and decodes {decoded} of {len(SP_TEXTS)} back to the text, newlines included")


def main():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        # A corpus of several documents: the paragraphs of a fixed text, the Python tutorial's
        # control-flow chapter (python3-doc, which set-up installs). Not a file of this
        # repository: the trained model, and so the greedy text checked below, must not change
        # whenever the README does.
        corpus = os.path.join(tmp, "corpus")
        os.mkdir(corpus)
        found = sorted(glob.glob("/usr/share/doc/python3*/html/_sources/tutorial/controlflow.rst.txt"))
        if not found:
            sys.exit("the Python documentation (python3-doc) is missing: run scripts/setup.sh")
        paragraphs = [p for p in open(found[0], encoding="utf-8").read().split("\n\n") if p]
        for i in range(8):
            with open(os.path.join(corpus, f"d{i}.txt"), "w", encoding="utf-8") as f:
                f.write("\n\n".join(paragraphs[i::8]))
        # The test model must hold every registered operator, each with a transformers implementation:
        # a newly registered operator fails here by name until it has both.
        arch_path = os.path.join(SOURCE, "configs/arch/every-op-tiny.json")
        in_model = {layer["type"] for layer in json.load(open(arch_path, encoding="utf-8"))["layers"]}
        for kind in json.loads(flashnas("arch", "ops", "--json")):
            check(kind["name"] in in_model, f"operator {kind['name']} is in configs/arch/every-op-tiny.json")
            check(kind["transformers"], f"operator {kind['name']} has a transformers implementation (modeling_flashnas.py)")
        tokens, run, hf = (os.path.join(tmp, n) for n in ("c.tokens", "run", "hf"))
        flashnas("data", "prepare", "--input", corpus, "--out", tokens)
        flashnas("train", "--arch", arch_path, "--data", tokens,
                 "--tokens", "98304", "--batch-size", "8", "--seq-len", "64", "--lr", "0.01", "--threads", "2", "--quiet",
                 "--out", run)
        flashnas("export", "--model", run, "--out", hf)

        t0 = time.perf_counter()
        model = transformers.AutoModelForCausalLM.from_pretrained(hf, trust_remote_code=True).eval()
        tok = transformers.AutoTokenizer.from_pretrained(hf, trust_remote_code=True)
        load_s = time.perf_counter() - t0

        text = PROMPT + " \u00e9\u20ac"
        ids = tok(text).input_ids
        check(ids == list(text.encode("utf-8")) and tok.decode(ids) == text,
              "AutoTokenizer encodes to the text's bytes and decodes them back")

        logits_file = os.path.join(tmp, "logits.safetensors")
        flashnas("eval", "--model", hf, "--logits", PROMPT, "--out", logits_file, "--threads", "2")
        ref = load_file(logits_file)["logits"]
        x = torch.tensor([list(PROMPT.encode())])
        with torch.no_grad():
            full = model(x).logits[0]
        diff = (full - ref).abs().max().item()
        print(f"      {x.shape[1]} positions, largest logit difference {diff:.3g} (largest logit {ref.abs().max():.3g})")
        check(full.shape == ref.shape and diff <= 1e-4, "logits agree with flashnas eval --logits within 1e-4")

        with torch.no_grad():
            out = model(x[:, :37], use_cache=True)
            steps, cache = [out.logits[0]], out.past_key_values
            for t in range(37, x.shape[1]):
                out = model(x[:, t:t + 1], past_key_values=cache, use_cache=True)
                steps.append(out.logits[0])
                cache = out.past_key_values
        inc = torch.cat(steps, 0)
        check((inc - full).abs().max().item() <= 1e-4,
              f"prefill of 37 then one-token steps equals the whole prompt (diff {(inc - full).abs().max().item():.3g})")

        n_new = 32
        gen = json.loads(flashnas("generate", "--model", hf, "--prompt", PROMPT, "--tokens", str(n_new),
                                  "--temperature", "0", "--threads", "2", "--json"))
        t0 = time.perf_counter()
        with torch.no_grad():
            g = model.generate(x, max_new_tokens=n_new, do_sample=False)
        hf_ms = (time.perf_counter() - t0) * 1e3 / n_new
        hf_text = bytes(g[0, x.shape[1]:].tolist()).decode("utf-8", errors="replace")
        check(len(set(hf_text)) >= 4, "the generated text varies (so that agreeing on it means something)")
        check(hf_text == gen["text"], f"greedy generate() gives flashnas generate's text ({hf_text!r})")

        data = os.path.join(tmp, "eval.txt")
        with open(data, "w", encoding="utf-8") as f:
            f.write(open(os.path.join(SOURCE, "configs/demo.toml"), encoding="utf-8").read())
        ev = json.loads(flashnas("eval", "--model", hf, "--data", data, "--seq-len", "64", "--threads", "2", "--json",
                                 "--quiet"))
        b = list(open(data, "rb").read())
        nats, n = 0.0, 0
        # The windows flashnas eval scores (64 tokens, each from a fresh state), the full ones as one
        # batch (every sequence of a batch has one length) and the last, shorter one alone.
        starts = list(range(0, len(b) - 1, 64))
        full = [s for s in starts if s + 64 <= len(b) - 1]
        with torch.no_grad():
            for group in (full, [s for s in starts if s not in full]):
                if not group:
                    continue
                L = min(64, len(b) - 1 - group[0])
                logp = torch.log_softmax(model(torch.tensor([b[s:s + L] for s in group])).logits.double(), -1)
                for i, s in enumerate(group):
                    nats -= logp[i, torch.arange(L), torch.tensor(b[s + 1:s + L + 1])].sum().item()
                    n += L
        loss = nats / n
        check(n == ev["tokens"] and abs(loss - ev["loss"]) <= 1e-5,
              f"loss over {n} tokens {loss:.7f} agrees with flashnas eval's {ev['loss']:.7f} within 1e-5")

        damaged_folders(tmp, hf, corpus)
        sentencepiece_export(tmp)

        print(f"      load {load_s:.2f} s; generate {hf_ms:.2f} ms/token in transformers "
              f"{transformers.__version__}, {gen['decode_ms_per_token']:.2f} ms/token in flashnas generate")
    if failures:
        sys.exit(f"{len(failures)} check(s) failed")


if __name__ == "__main__":
    main()
