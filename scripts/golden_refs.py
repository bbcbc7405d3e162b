#!/usr/bin/env python3
"""Golden values for flashnas's operators from the published reference code.

Writes tests/golden/<operator>.safetensors: random inputs (and weights, where
the reference is a whole module), and the outputs of the published pure-PyTorch
reference implementations run on the CPU in float64. tests/test_golden.cpp
runs flashnas's operators (their registry entries' OpTesting::golden) on the
same inputs and compares.

The references, pinned and downloaded from PyPI into the user's cache:
  - flash-linear-attention (fla-core 0.6.0): the naive recurrences of
    attention (fla/ops/attn/naive.py), the delta rule, the gated delta rule
    and gated linear attention;
  - mamba-ssm 2.3.2.post1 (source distribution): ssd_minimal_discrete,
    the SSD listing of the Mamba2 paper (mamba_ssm/modules/ssd_minimal.py);
  - transformers (the pinned version in the venv): LFM2's gated short
    convolution (Lfm2ShortConv) and Llama's SwiGLU MLP (LlamaMLP).
Only the reference functions are taken from each file (by name, through the
file's syntax tree), so that the GPU kernels the packages also import are not
needed. The fla functions cast their inputs to float32 internally; they run
here with that cast made a float64 one (see float64_everywhere).

Run from the repository root with the project's venv:
  "$FLASHNAS_VENV/bin/python" scripts/golden_refs.py [--out tests/golden]
"""
import argparse
import ast
import contextlib
import hashlib
import io
import os
import pathlib
import sys
import tarfile
import types
import urllib.parse
import urllib.request
import zipfile

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

# (PyPI project, version, file kind); the file's SHA-256 is checked against PyPI's.
SOURCES = {
    "fla": ("fla-core", "0.6.0", "bdist_wheel"),
    "mamba": ("mamba-ssm", "2.3.2.post1", "sdist"),
}


def cache_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    d = pathlib.Path(base) / "flashnas" / "golden-src"
    d.mkdir(parents=True, exist_ok=True)
    return d


def pypi_file(name: str, version: str, packagetype: str) -> tuple[bytes, str, str]:
    """The release file's bytes, its file name and SHA-256 (checked against PyPI's)."""
    import json

    index = f"https://pypi.org/pypi/{name}/json"
    with urllib.request.urlopen(index, timeout=60) as r:
        meta = json.load(r)
    files = [u for u in meta["releases"].get(version, []) if u["packagetype"] == packagetype]
    if not files:
        sys.exit(f"golden_refs: PyPI has no {packagetype} of {name} {version}")
    f = files[0]
    path = cache_dir() / f["filename"]
    if not path.exists():
        with urllib.request.urlopen(urllib.parse.urljoin(index, f["url"]), timeout=300) as r:
            data = r.read()
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.rename(path)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != f["digests"]["sha256"]:
        sys.exit(f"golden_refs: {path} has SHA-256 {digest}, PyPI says {f['digests']['sha256']}")
    return data, f["filename"], digest


def member(archive: bytes, kind: str, name_suffix: str) -> str:
    if kind == "bdist_wheel":
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            names = [n for n in z.namelist() if n.endswith(name_suffix)]
            return z.read(names[0]).decode()
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as t:
        names = [n for n in t.getnames() if n.endswith(name_suffix)]
        return t.extractfile(names[0]).read().decode()


def functions_of(source: str, path: str, wanted: list[str]) -> types.SimpleNamespace:
    """The named top-level functions of a source file, with torch, F, math and
    einops in scope (the imports these reference functions use)."""
    tree = ast.parse(source, path)
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in set(wanted) | {"segsum"}]
    missing = set(wanted) - {n.name for n in keep}
    if missing:
        sys.exit(f"golden_refs: {path} has no {sorted(missing)}")
    import einops

    scope = {"torch": torch, "F": F, "rearrange": einops.rearrange, "repeat": einops.repeat}
    exec(compile(ast.Module(body=keep, type_ignores=[]), path, "exec"), scope)
    return types.SimpleNamespace(**{n: scope[n] for n in wanted})


@contextlib.contextmanager
def float64_everywhere():
    """The fla references cast to float32 (x.float(), .to(torch.float32),
    dtype=torch.float32); here those casts give float64 instead."""
    saved_float, saved_f32 = torch.Tensor.float, torch.float32
    torch.Tensor.float = lambda self, *a, **k: self.double()
    torch.float32 = torch.float64
    try:
        yield
    finally:
        torch.Tensor.float = saved_float
        torch.float32 = saved_f32


def run_module(m, width):
    """A whole reference module in float64 with random weights (not its init):
    its input x [2, 11, width], output and weights by parameter name."""
    m = m.double()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
        x = torch.randn(2, 11, width, dtype=torch.float64)
        y = m(x)
    return x, y, {n: p.detach().clone() for n, p in m.named_parameters()}


def l2(x):
    return x / x.norm(dim=-1, keepdim=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/golden")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    d = torch.float64

    fla_whl, fla_file, fla_sha = pypi_file(*SOURCES["fla"])
    mamba_tgz, mamba_file, mamba_sha = pypi_file(*SOURCES["mamba"])
    src = lambda archive, kind, suffix, names: functions_of(member(archive, kind, suffix), suffix, names)
    attn = src(fla_whl, "bdist_wheel", "fla/ops/attn/naive.py", ["naive_parallel_attn"])
    delta = src(fla_whl, "bdist_wheel", "fla/ops/delta_rule/naive.py", ["delta_rule_recurrence"])
    gdelta = src(fla_whl, "bdist_wheel", "fla/ops/gated_delta_rule/naive.py", ["naive_recurrent_gated_delta_rule"])
    gla = src(fla_whl, "bdist_wheel", "fla/ops/gla/naive.py", ["naive_recurrent_gla"])
    dplr = src(fla_whl, "bdist_wheel", "fla/ops/generalized_delta_rule/dplr/naive.py", ["dplr_recurrence"])
    ssd = src(mamba_tgz, "sdist", "mamba_ssm/modules/ssd_minimal.py", ["ssd_minimal_discrete"])
    import transformers
    from transformers.models.lfm2.configuration_lfm2 import Lfm2Config
    from transformers.models.lfm2.modeling_lfm2 import Lfm2ShortConv
    from transformers.models.llama.configuration_llama import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    fla_src = f"{fla_file} (sha256 {fla_sha})"
    mamba_src = f"{mamba_file} (sha256 {mamba_sha})"
    tf_src = f"transformers {transformers.__version__}"
    files = {}

    # attn / swa: [B, T, H, D] layout, grouped-query heads, scale D^-1/2.
    B, T, HQ, H, D = 2, 13, 4, 2, 8
    for name, window in (("attn", None), ("swa", 5)):
        q, k, v = torch.randn(B, T, HQ, D, dtype=d), torch.randn(B, T, H, D, dtype=d), torch.randn(B, T, H, D, dtype=d)
        o, _ = attn.naive_parallel_attn(q, k, v, window_size=window)
        files[name] = ({"q": q, "k": k, "v": v, "o": o},
                       {"reference": fla_src + " fla/ops/attn/naive.py naive_parallel_attn", "window": str(window or 0)})

    # mamba2: SSD with per-head B and C, an initial state, T a multiple of the block.
    B, T, H, P, N = 2, 32, 4, 6, 5
    X, Bm, Cm = torch.randn(B, T, H, P, dtype=d), torch.randn(B, T, H, N, dtype=d), torch.randn(B, T, H, N, dtype=d)
    A = -torch.rand(B, T, H, dtype=d) * 1.5
    h0 = torch.randn(B, 1, H, P, N, dtype=d)
    Y, hT = ssd.ssd_minimal_discrete(X, A, Bm, Cm, block_len=8, initial_states=h0)
    files["mamba2"] = ({"x": X, "a": A, "B": Bm, "C": Cm, "h0": h0[:, 0], "y": Y, "state": hT},
                       {"reference": mamba_src + " mamba_ssm/modules/ssd_minimal.py ssd_minimal_discrete"})

    # deltanet: [B, H, T, D] layout; k L2-normalised as the layer does; scale dk^-1/2 inside.
    B, H, T, DK, DV = 2, 3, 21, 6, 5
    q, k = l2(torch.randn(B, H, T, DK, dtype=d)), l2(torch.randn(B, H, T, DK, dtype=d))
    v, beta, S0 = torch.randn(B, H, T, DV, dtype=d), torch.rand(B, H, T, dtype=d), torch.randn(B, H, DK, DV, dtype=d)
    with float64_everywhere():
        o, S = delta.delta_rule_recurrence(q, k, v, beta, initial_state=S0.clone(), output_final_state=True)
    files["deltanet"] = ({"q": q, "k": k, "v": v, "beta": beta, "S0": S0, "o": o, "state": S},
                         {"reference": fla_src + " fla/ops/delta_rule/naive.py delta_rule_recurrence"})

    # gdn: [B, T, H, D] layout, log decays g <= 0.
    B, T, H, DK, DV = 2, 21, 3, 6, 5
    q, k = l2(torch.randn(B, T, H, DK, dtype=d)), l2(torch.randn(B, T, H, DK, dtype=d))
    v, beta = torch.randn(B, T, H, DV, dtype=d), torch.rand(B, T, H, dtype=d)
    g, S0 = -torch.rand(B, T, H, dtype=d) * 2, torch.randn(B, H, DK, DV, dtype=d)
    with float64_everywhere():
        o, S = gdelta.naive_recurrent_gated_delta_rule(q, k, v, beta, g, initial_state=S0.clone(), output_final_state=True)
    files["gdn"] = ({"q": q, "k": k, "v": v, "beta": beta, "g": g, "S0": S0, "o": o, "state": S},
                    {"reference": fla_src + " fla/ops/gated_delta_rule/naive.py naive_recurrent_gated_delta_rule"})

    # gla: [B, T, H, D] layout, log forget gates per key dim (as the layer makes them).
    B, T, H, DK, DV = 2, 21, 3, 6, 5
    q, k, v = torch.randn(B, T, H, DK, dtype=d), torch.randn(B, T, H, DK, dtype=d), torch.randn(B, T, H, DV, dtype=d)
    gk = F.logsigmoid(torch.randn(B, T, H, DK, dtype=d) * 2) / 4
    S0 = torch.randn(B, H, DK, DV, dtype=d)
    with float64_everywhere():
        o, S = gla.naive_recurrent_gla(q, k, v, gk, initial_state=S0.clone(), output_final_state=True)
    files["gla"] = ({"q": q, "k": k, "v": v, "g": gk, "S0": S0, "o": o, "state": S},
                    {"reference": fla_src + " fla/ops/gla/naive.py naive_recurrent_gla"})

    # shortconv: the whole LFM2 block, with its weights (random, not its init).
    dm, K = 16, 3
    cfg = Lfm2Config(hidden_size=dm, conv_L_cache=K, conv_bias=False, num_hidden_layers=1, layer_types=["conv"])
    x, y, weights = run_module(Lfm2ShortConv(cfg, 0), dm)
    files["shortconv"] = ({"x": x, "o": y, **weights},
                          {"reference": tf_src + " transformers.models.lfm2.modeling_lfm2.Lfm2ShortConv",
                           "conv_kernel": str(K), "conv_bias": "false"})

    # ffn: the SwiGLU MLP, with its weights.
    cfg = LlamaConfig(hidden_size=dm, intermediate_size=24, num_attention_heads=2, num_key_value_heads=2,
                      hidden_act="silu", mlp_bias=False)
    x, y, weights = run_module(LlamaMLP(cfg), dm)
    files["ffn"] = ({"x": x, "o": y, **weights},
                    {"reference": tf_src + " transformers.models.llama.modeling_llama.LlamaMLP", "d_ff": "24"})

    # rwkv7: fla's diagonal-plus-low-rank recurrence, [B, H, T, D] layout, q scaled by dk^-1/2 inside,
    # with the inputs RWKV-7's layer gives it: alpha = -kk, beta = kk * a (kk unit per head, a in (0, 1)),
    # log decays in (-exp(-1/2), 0).
    B, H, T, DK, DV = 2, 3, 21, 6, 5
    q, k, v = torch.randn(B, H, T, DK, dtype=d), torch.randn(B, H, T, DK, dtype=d), torch.randn(B, H, T, DV, dtype=d)
    kk, a = l2(torch.randn(B, H, T, DK, dtype=d)), torch.rand(B, H, T, DK, dtype=d)
    gk = -0.6065306597126334 * torch.sigmoid(torch.randn(B, H, T, DK, dtype=d) * 2)
    S0 = torch.randn(B, H, DK, DV, dtype=d)
    with float64_everywhere():
        o, S = dplr.dplr_recurrence(q, k, v, -kk, kk * a, gk, initial_state=S0.clone(), output_final_state=True)
    files["rwkv7"] = ({"q": q, "k": k, "v": v, "alpha": -kk, "beta": kk * a, "gk": gk, "S0": S0, "o": o, "state": S},
                      {"reference": fla_src + " fla/ops/generalized_delta_rule/dplr/naive.py dplr_recurrence"})

    for name, (tensors, meta) in sorted(files.items()):
        path = out / f"{name}.safetensors"
        save_file({n: t.contiguous() for n, t in tensors.items()}, str(path), metadata=meta)
        print(f"{path}: {', '.join(f'{n} {list(t.shape)}' for n, t in sorted(tensors.items()))}")


if __name__ == "__main__":
    main()
