"""A flashnas hybrid language model for Hugging Face transformers (trust_remote_code).

Written by `flashnas export` next to model.safetensors; plain PyTorch, no other
package. The parameter names are flashnas's own (embed_tokens.weight,
meta_tokens, layers.<i>.norm.weight, layers.<i>.<type>.*, norm.weight,
lm_head.weight unless tied), so the weights load as they are.

Each sublayer is x + op(rms_norm(x)). A prompt runs through the parallel forms
(masked attention, chunked SSD for Mamba2, the chunked WY form of the delta
rule, chunked gated linear attention; RWKV-7 token by token); a decode step
of one token through the recurrent forms, from the state in FlashnasCache:
attention keys and values (the last window - 1 of them for sliding-window
attention), the short convolutions' last inputs, RWKV-7's last input, the
Mamba2 state [B, H, head_dim, d_state] and the delta-rule, GLA and RWKV-7
states [B, H, dk, dv], the states kept in float32. Padding is not supported: every sequence of a batch
has the same length.
"""
import hashlib
import json
import math
import os

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_flashnas import FlashnasConfig


def _acc(dtype):
    """Accumulation dtype: float64 stays, everything else computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _rms(x, weight, eps):
    xf = x.to(_acc(x.dtype))
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.to(xf.dtype)).to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return _rms(x, self.weight, self.eps)


class _Weight(nn.Module):
    """A bare `weight` parameter, for names such as norm.weight and o_norm.weight."""

    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))


def _linear(n_in, n_out):
    return nn.Linear(n_in, n_out, bias=False)


def _heads(t, H, dim, acc):
    """[B, T, H*dim] -> [B, H, T, dim] in the accumulation dtype."""
    B, T = t.shape[0], t.shape[1]
    return t.reshape(B, T, H, dim).to(acc).transpose(1, 2)


def _head_rms(y, weight, eps):
    """RMSNorm over the last dim of per-head outputs y [..., dv] with a shared weight [dv]."""
    return y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps) * weight.to(y.dtype)


def _rope(x, pos0, theta):
    """Rotary embedding of x [B, H, T, dh] at positions pos0 .. pos0 + T - 1 (halves rotated)."""
    T, dh = x.shape[2], x.shape[3]
    half = dh // 2
    inv_freq = theta ** (-torch.arange(0, half, dtype=torch.float64, device=x.device) * 2.0 / dh)
    ang = torch.outer(torch.arange(pos0, pos0 + T, dtype=torch.float64, device=x.device), inv_freq)
    acc = _acc(x.dtype)
    cos = torch.cat([ang.cos(), ang.cos()], -1).to(acc)
    sin = torch.cat([ang.sin(), ang.sin()], -1).to(acc)
    xf = x.to(acc)
    rot = torch.cat([-xf[..., half:], xf[..., :half]], -1)
    return (xf * cos + rot * sin).to(x.dtype)


class ShortConv(nn.Module):
    """Depthwise causal convolution over time, followed by SiLU unless `silu` is False; the state holds the last `kernel` inputs."""

    def __init__(self, channels, kernel, bias, silu=True):
        super().__init__()
        self.kernel, self.silu = kernel, silu
        self.weight = nn.Parameter(torch.zeros(channels, 1, kernel))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x, state, name):
        """x [B, T, C] -> [B, T, C]; state[name] [B, C, kernel] is read and replaced when state is given."""
        B, T, C = x.shape
        xt = x.transpose(1, 2)
        if state is not None and name in state:
            left = state[name][:, :, 1:].to(x.dtype)
        else:
            left = x.new_zeros(B, C, self.kernel - 1)
        xp = torch.cat([left, xt], 2)
        if state is not None:
            state[name] = xp[:, :, -self.kernel:].clone()
        y = F.conv1d(xp, self.weight, self.bias, groups=C)
        return (F.silu(y) if self.silu else y).transpose(1, 2)


class Attention(nn.Module):
    """Causal grouped-query attention with RoPE; `window` > 0 keeps only the last `window` positions visible."""

    def __init__(self, hp, d_model, window=0):
        super().__init__()
        self.h, self.hkv, self.dh = hp["n_heads"], hp["n_kv_heads"], hp["head_dim"]
        self.theta, self.window = hp["rope_theta"], window
        self.q_proj = _linear(d_model, self.h * self.dh)
        self.k_proj = _linear(d_model, self.hkv * self.dh)
        self.v_proj = _linear(d_model, self.hkv * self.dh)
        self.o_proj = _linear(self.h * self.dh, d_model)

    def forward(self, x, state, pos0):
        B, T, _ = x.shape
        q = _rope(self.q_proj(x).view(B, T, self.h, self.dh).transpose(1, 2), pos0, self.theta)
        k = _rope(self.k_proj(x).view(B, T, self.hkv, self.dh).transpose(1, 2), pos0, self.theta)
        v = self.v_proj(x).view(B, T, self.hkv, self.dh).transpose(1, 2)
        k_pos0 = pos0
        if state is not None:
            if "k" in state:
                k_pos0 = pos0 - state["k"].shape[2]
                k = torch.cat([state["k"], k], 2)
                v = torch.cat([state["v"], v], 2)
            keep = k.shape[2] if self.window == 0 else min(k.shape[2], self.window - 1)
            state["k"], state["v"] = k[:, :, k.shape[2] - keep:], v[:, :, v.shape[2] - keep:]
        acc = _acc(x.dtype)
        groups = self.h // self.hkv
        kr = k.repeat_interleave(groups, 1).to(acc)
        vr = v.repeat_interleave(groups, 1).to(acc)
        scores = torch.matmul(q.to(acc), kr.transpose(-1, -2)) / math.sqrt(self.dh)
        qpos = torch.arange(pos0, pos0 + T, device=x.device).unsqueeze(1)
        kpos = torch.arange(k_pos0, k_pos0 + k.shape[2], device=x.device).unsqueeze(0)
        visible = kpos <= qpos
        if self.window > 0:
            visible = visible & (qpos - kpos < self.window)
        scores = scores.masked_fill(~visible, float("-inf"))
        o = torch.matmul(torch.softmax(scores, -1), vr).to(x.dtype)
        return self.o_proj(o.transpose(1, 2).reshape(B, T, self.h * self.dh))


class Ffn(nn.Module):
    def __init__(self, hp, d_model):
        super().__init__()
        self.gate_proj = _linear(d_model, hp["d_ff"])
        self.up_proj = _linear(d_model, hp["d_ff"])
        self.down_proj = _linear(hp["d_ff"], d_model)

    def forward(self, x, state, pos0):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def ssd_chunked(x, a, Bm, Cm, h0, Q):
    """Mamba2's scan h_t = exp(a_t) h_{t-1} + x_t B_t^T, y_t = h_t C_t, in chunks of Q.

    x [B, T, H, P], a [B, T, H], Bm and Cm [B, T, G, N] (H / G heads per group),
    h0 [B, H, P, N] or None -> y [B, T, H, P], final state [B, H, P, N].
    """
    Bsz, T, H, P = x.shape
    G, N = Bm.shape[2], Bm.shape[3]
    R = H // G
    pad = (Q - T % Q) % Q
    nc = (T + pad) // Q
    acc = _acc(x.dtype)

    def chunks(t, shape):  # pad time with no-op tokens (x = 0, a = 0) and split it into chunks
        t = t.to(acc)
        if pad:
            t = torch.cat([t, t.new_zeros((t.shape[0], pad) + tuple(t.shape[2:]))], 1)
        return t.reshape(shape)

    xs = chunks(x, (Bsz, nc, Q, G, R, P)).permute(0, 3, 4, 1, 2, 5)   # [B, G, R, c, l, P]
    As = chunks(a, (Bsz, nc, Q, G, R)).permute(0, 3, 4, 1, 2)         # [B, G, R, c, l]
    Bs = chunks(Bm, (Bsz, nc, Q, G, 1, N)).permute(0, 3, 4, 1, 2, 5)  # [B, G, 1, c, l, N]
    Cs = chunks(Cm, (Bsz, nc, Q, G, 1, N)).permute(0, 3, 4, 1, 2, 5)
    cum = As.cumsum(-1)
    causal = torch.ones(Q, Q, dtype=torch.bool, device=x.device).tril()
    decay = (cum.unsqueeze(-1) - cum.unsqueeze(-2)).masked_fill(~causal, float("-inf")).exp()
    y_in = torch.matmul(torch.matmul(Cs, Bs.transpose(-1, -2)) * decay, xs)       # within each chunk
    to_end = (cum[..., -1:] - cum).exp()
    local = torch.matmul((xs * to_end.unsqueeze(-1)).transpose(-1, -2), Bs)      # [B, G, R, c, P, N]
    h = h0.to(acc).view(Bsz, G, R, P, N) if h0 is not None else xs.new_zeros(Bsz, G, R, P, N)
    entering = []
    for c in range(nc):  # pass the state from chunk to chunk
        entering.append(h)
        h = h * cum[:, :, :, c, -1].exp()[..., None, None] + local[:, :, :, c]
    h_in = torch.stack(entering, 3)                                              # [B, G, R, c, P, N]
    y_from_state = torch.matmul(Cs, h_in.transpose(-1, -2)) * cum.exp().unsqueeze(-1)
    y = (y_in + y_from_state).permute(0, 3, 4, 1, 2, 5).reshape(Bsz, nc * Q, H, P)[:, :T]
    return y, h.reshape(Bsz, H, P, N)


class Mamba2(nn.Module):
    def __init__(self, hp, d_model):
        super().__init__()
        self.P, self.N, self.G = hp["head_dim"], hp["d_state"], hp["n_groups"]
        self.chunk, self.eps = hp["chunk_size"], hp["norm_eps"]
        self.E = hp["expand"] * d_model
        self.H = self.E // self.P
        self.GN = self.G * self.N
        self.in_proj = _linear(d_model, 2 * self.E + 2 * self.GN + self.H)
        self.conv1d = ShortConv(self.E + 2 * self.GN, hp["conv_kernel"], True)
        self.dt_bias = nn.Parameter(torch.zeros(self.H))
        self.A_log = nn.Parameter(torch.zeros(self.H))
        self.D = nn.Parameter(torch.ones(self.H))
        self.norm = _Weight(self.E)
        self.out_proj = _linear(self.E, d_model)

    def _gated_norm(self, y, z):
        g = y.to(_acc(y.dtype)) * F.silu(z.to(_acc(y.dtype)))
        shape = g.shape
        g = g.reshape(-1, self.G, self.E // self.G)
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + self.eps)
        return (g.reshape(shape) * self.norm.weight.to(g.dtype)).to(y.dtype)

    def forward(self, x, state, pos0):
        B, T, _ = x.shape
        E, GN, H, P, acc = self.E, self.GN, self.H, self.P, _acc(x.dtype)
        zxbcdt = self.in_proj(x)
        z, xbc, dt_raw = zxbcdt[..., :E], zxbcdt[..., E:2 * E + 2 * GN], zxbcdt[..., 2 * E + 2 * GN:]
        xbc = self.conv1d(xbc, state, "conv")
        xs = xbc[..., :E].reshape(B, T, H, P).to(acc)
        Bm = xbc[..., E:E + GN].reshape(B, T, self.G, self.N).to(acc)
        Cm = xbc[..., E + GN:].reshape(B, T, self.G, self.N).to(acc)
        dt = F.softplus(dt_raw.to(acc) + self.dt_bias.to(acc))                    # [B, T, H]
        A = -self.A_log.to(acc).exp()
        h0 = state.get("ssm") if state is not None else None
        if T == 1 and h0 is not None:  # recurrent step
            R = H // self.G
            b, c = Bm[:, 0].repeat_interleave(R, 1), Cm[:, 0].repeat_interleave(R, 1)  # [B, H, N]
            h = h0 * (dt[:, 0] * A).exp()[..., None, None] + (xs[:, 0] * dt[:, 0, :, None]).unsqueeze(-1) * b.unsqueeze(-2)
            y = torch.matmul(h, c.unsqueeze(-1)).squeeze(-1).unsqueeze(1)           # [B, 1, H, P]
        else:
            y, h = ssd_chunked(xs * dt.unsqueeze(-1), dt * A, Bm, Cm, h0, self.chunk)
        if state is not None:
            state["ssm"] = h
        y = y + xs * self.D.to(acc).view(1, 1, H, 1)
        return self.out_proj(self._gated_norm(y.reshape(B, T, E).to(x.dtype), z))


def delta_rule_chunked(q, k, v, beta, g, S0, C):
    """The (gated) delta rule S_t = exp(g_t) S_{t-1} + k_t (beta_t (v_t - (exp(g_t) S_{t-1})^T k_t))^T,
    o_t = S_t^T q_t, in chunks of C (WY form).

    q, k [B, H, T, dk], v [B, H, T, dv], beta [B, H, T], g [B, H, T] or None,
    S0 [B, H, dk, dv] or None -> o [B, H, T, dv], final state [B, H, dk, dv].
    """
    B, H, T, dk = q.shape
    dv = v.shape[-1]
    acc = _acc(q.dtype)
    pad = (C - T % C) % C
    n = (T + pad) // C

    def chunks(t):  # padding tokens are no-ops: k = v = beta = g = 0
        t = t.to(acc)
        if pad:
            t = torch.cat([t, t.new_zeros(t.shape[:2] + (pad,) + t.shape[3:])], 2)
        return t.reshape(t.shape[:2] + (n, C) + t.shape[3:])

    q, k, v, beta = chunks(q), chunks(k), chunks(v), chunks(beta)
    gamma = chunks(g).cumsum(-1) if g is not None else q.new_zeros(B, H, n, C)
    lower = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    decay = (gamma.unsqueeze(-1) - gamma.unsqueeze(-2)).masked_fill(~lower, float("-inf")).exp()
    kb = k * beta.unsqueeze(-1)
    A = (torch.matmul(kb, k.transpose(-1, -2)) * decay).tril(-1) + torch.eye(C, dtype=acc, device=q.device)
    eg = gamma.exp()
    rhs = torch.cat([v * beta.unsqueeze(-1), kb * eg.unsqueeze(-1)], -1)
    UW = torch.linalg.solve_triangular(A, rhs, upper=False, unitriangular=True)
    U, W = UW[..., :dv], UW[..., dv:]
    qk = torch.matmul(q, k.transpose(-1, -2)) * decay
    qg = q * eg.unsqueeze(-1)
    last = gamma[..., -1:]
    kdec = k * (last - gamma).exp().unsqueeze(-1)
    S = S0.to(acc) if S0 is not None else q.new_zeros(B, H, dk, dv)
    outs = []
    for c in range(n):
        vnew = U[:, :, c] - torch.matmul(W[:, :, c], S)
        outs.append(torch.matmul(qg[:, :, c], S) + torch.matmul(qk[:, :, c], vnew))
        S = S * last[:, :, c].exp().unsqueeze(-1) + torch.matmul(kdec[:, :, c].transpose(-1, -2), vnew)
    return torch.stack(outs, 2).reshape(B, H, n * C, dv)[:, :, :T], S


def delta_rule_step(q, k, v, beta, g, S):
    """One token of the delta rule: q, k [B, H, dk], v [B, H, dv], beta, g [B, H] -> o [B, H, dv], new S."""
    if g is not None:
        S = S * g.exp()[..., None, None]
    pred = torch.matmul(k.unsqueeze(-2), S).squeeze(-2)
    S = S + k.unsqueeze(-1) * (beta.unsqueeze(-1) * (v - pred)).unsqueeze(-2)
    return torch.matmul(q.unsqueeze(-2), S).squeeze(-2), S


class DeltaNet(nn.Module):
    """DeltaNet, and with `decay` the Gated DeltaNet."""

    def __init__(self, hp, d_model, decay):
        super().__init__()
        self.H, self.dk, self.dv = hp["n_heads"], hp["head_k_dim"], hp["head_v_dim"]
        self.chunk, self.eps, self.decay, self.use_gate = hp["chunk_size"], hp["norm_eps"], decay, hp["use_gate"]
        kd, vd = self.H * self.dk, self.H * self.dv
        self.q_proj, self.k_proj, self.v_proj = _linear(d_model, kd), _linear(d_model, kd), _linear(d_model, vd)
        self.b_proj = _linear(d_model, self.H)
        if decay:
            self.a_proj = _linear(d_model, self.H)
            self.A_log = nn.Parameter(torch.zeros(self.H))
            self.dt_bias = nn.Parameter(torch.zeros(self.H))
        if self.use_gate:
            self.g_proj = _linear(d_model, vd)
        K = hp["conv_kernel"]
        self.q_conv1d, self.k_conv1d, self.v_conv1d = ShortConv(kd, K, False), ShortConv(kd, K, False), ShortConv(vd, K, False)
        self.o_norm = _Weight(self.dv)
        self.o_proj = _linear(vd, d_model)

    def forward(self, x, state, pos0):
        B, T, _ = x.shape
        acc = _acc(x.dtype)

        def heads(t, dim):
            return _heads(t, self.H, dim, acc)

        def l2(t):
            return t * torch.rsqrt(t.pow(2).sum(-1, keepdim=True) + 1e-6)

        q = l2(heads(self.q_conv1d(self.q_proj(x), state, "q_conv"), self.dk)) / math.sqrt(self.dk)
        k = l2(heads(self.k_conv1d(self.k_proj(x), state, "k_conv"), self.dk))
        v = heads(self.v_conv1d(self.v_proj(x), state, "v_conv"), self.dv)
        beta = torch.sigmoid(self.b_proj(x).to(acc)).transpose(1, 2)              # [B, H, T]
        g = None
        if self.decay:
            g = (-self.A_log.to(acc).exp() * F.softplus(self.a_proj(x).to(acc) + self.dt_bias.to(acc))).transpose(1, 2)
        S0 = state.get("S") if state is not None else None
        if T == 1 and S0 is not None:  # recurrent step
            o, S = delta_rule_step(q[:, :, 0], k[:, :, 0], v[:, :, 0], beta[:, :, 0],
                                   g[:, :, 0] if g is not None else None, S0)
            o = o.unsqueeze(2)
        else:
            o, S = delta_rule_chunked(q, k, v, beta, g, S0, self.chunk)
        if state is not None:
            state["S"] = S
        y = _head_rms(o.transpose(1, 2), self.o_norm.weight, self.eps).reshape(B, T, self.H * self.dv)
        if self.use_gate:
            y = y * F.silu(self.g_proj(x).to(acc))
        return self.o_proj(y.to(x.dtype))


class GatedShortConv(nn.Module):
    """LFM2's gated short convolution: [b | c | u] = in_proj(x); out_proj(c * conv(b * u)), the conv without SiLU."""

    def __init__(self, hp, d_model):
        super().__init__()
        self.d, bias = d_model, hp["conv_bias"]
        self.in_proj = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.conv = ShortConv(d_model, hp["conv_kernel"], bias, silu=False)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def forward(self, x, state, pos0):
        b, c, u = self.in_proj(x).split(self.d, -1)
        return self.out_proj(c * self.conv(b * u, state, "conv"))


def gla_chunked(q, k, v, g, S0, C):
    """Gated linear attention over a sequence. q (scaled), k, g [B, H, T, dk] (g: log forget gates <= 0),
    v [B, H, T, dv], S0 [B, H, dk, dv] or None -> o [B, H, T, dv], S. Within a chunk the pairwise decays
    exp(b_i - b_j) are exact (masked to j <= i before the exponential); only S passes between chunks."""
    B, H, T, dk = q.shape
    dv = v.shape[-1]
    acc = _acc(q.dtype)
    n = (T + C - 1) // C
    pad = n * C - T

    def chunks(t):  # padding tokens are no-ops: k = 0 and g = 0
        t = F.pad(t.to(acc), (0, 0, 0, pad))
        return t.reshape(B, H, n, C, t.shape[-1])

    qc, kc, vc = chunks(q), chunks(k), chunks(v)
    b = chunks(g).cumsum(3)
    upper = torch.ones(C, C, dtype=torch.bool, device=q.device).triu(1)
    decay = (b.unsqueeze(4) - b.unsqueeze(3)).masked_fill(upper.view(C, C, 1), float("-inf")).exp()
    intra = ((qc.unsqueeze(4) * kc.unsqueeze(3) * decay).sum(-1)) @ vc
    last = b[:, :, :, C - 1]
    q_dec, k_dec = qc * b.exp(), kc * (last.unsqueeze(3) - b).exp()
    S = S0.to(acc) if S0 is not None else q.new_zeros(B, H, dk, dv, dtype=acc)
    out = []
    for c in range(n):
        out.append(intra[:, :, c] + q_dec[:, :, c] @ S)
        S = last[:, :, c].exp().unsqueeze(-1) * S + k_dec[:, :, c].transpose(-1, -2) @ vc[:, :, c]
    return torch.stack(out, 2).reshape(B, H, n * C, dv)[:, :, :T], S


class Gla(nn.Module):
    """Gated linear attention (flash-linear-attention's GatedLinearAttention defaults): low-rank forget gate per
    key channel, per-head RMSNorm of the output, swish output gate."""

    def __init__(self, hp, d_model):
        super().__init__()
        self.H, self.dk, self.dv = hp["n_heads"], hp["head_k_dim"], hp["head_v_dim"]
        self.norm_gate, self.chunk, self.eps = hp["gate_normalizer"], hp["chunk_size"], hp["norm_eps"]
        kd, vd = self.H * self.dk, self.H * self.dv
        self.q_proj, self.k_proj = _linear(d_model, kd), _linear(d_model, kd)
        self.v_proj, self.g_proj = _linear(d_model, vd), _linear(d_model, vd)
        self.gk_proj = nn.Sequential(_linear(d_model, hp["gate_rank"]), nn.Linear(hp["gate_rank"], kd, bias=True))
        self.g_norm = _Weight(self.dv)
        self.o_proj = _linear(vd, d_model)

    def forward(self, x, state, pos0):
        B, T, _ = x.shape
        acc = _acc(x.dtype)
        q = _heads(self.q_proj(x), self.H, self.dk, acc) / math.sqrt(self.dk)
        k, v = _heads(self.k_proj(x), self.H, self.dk, acc), _heads(self.v_proj(x), self.H, self.dv, acc)
        g = _heads(F.logsigmoid(self.gk_proj(x).to(acc)) / self.norm_gate, self.H, self.dk, acc)
        o, S = gla_chunked(q, k, v, g, state.get("S") if state is not None else None, self.chunk)
        if state is not None:
            state["S"] = S
        y = _head_rms(o.transpose(1, 2), self.g_norm.weight, self.eps).reshape(B, T, self.H * self.dv)
        y = y * F.silu(self.g_proj(x).to(acc))
        return self.o_proj(y.to(x.dtype))


class _Lora(nn.Module):
    """up(act(down(x))), named lora.0 and lora.2 as flash-linear-attention's LoRA."""

    def __init__(self, d_in, rank, d_out, act, bias):
        super().__init__()
        self.lora = nn.Sequential(_linear(d_in, rank), act, nn.Linear(rank, d_out, bias=bias))

    def forward(self, x):
        return self.lora(x)


class Rwkv7(nn.Module):
    """RWKV-7 time mixing as flash-linear-attention builds it for its first layer (no value residual across
    layers): token shift, vector decay and in-context learning rate, the generalised delta rule
    S_t = diag(exp(w_t)) S + (S^T alpha_t) beta_t + k_t v_t, o_t = S_t^T r_t, run token by token here."""

    MAX_LOG_DECAY = math.exp(-0.5)

    def __init__(self, hp, d_model):
        super().__init__()
        self.H, self.N, self.eps = hp["n_heads"], hp["head_dim"], hp["norm_eps"]
        D = self.H * self.N
        for name in ("x_r", "x_w", "x_k", "x_v", "x_a", "x_g"):
            setattr(self, name, nn.Parameter(torch.zeros(d_model)))
        self.k_k, self.k_a = nn.Parameter(torch.zeros(D)), nn.Parameter(torch.zeros(D))
        self.r_k = nn.Parameter(torch.zeros(self.H, self.N))
        self.r_proj, self.k_proj, self.v_proj = _linear(d_model, D), _linear(d_model, D), _linear(d_model, D)
        self.o_proj = _linear(D, d_model)
        self.w_lora = _Lora(d_model, hp["decay_rank"], D, nn.Tanh(), True)
        self.a_lora = _Lora(d_model, hp["a_rank"], D, nn.Identity(), True)
        self.g_lora = _Lora(d_model, hp["gate_rank"], D, nn.Sigmoid(), False)
        self.g_norm = nn.Module()
        self.g_norm.weight, self.g_norm.bias = nn.Parameter(torch.ones(D)), nn.Parameter(torch.zeros(D))

    def forward(self, x, state, pos0):
        B, T, d = x.shape
        acc = _acc(x.dtype)
        prev = F.pad(x, (0, 0, 1, 0))[:, :T].clone()
        if state is not None and "shift" in state:
            prev[:, 0] = state["shift"].to(x.dtype)
        delta = prev - x

        def mixed(mu):
            return x + delta * mu.to(x.dtype)

        def heads(t):  # [B, T, D] -> [B, T, H, N]
            return t.to(acc).reshape(B, T, self.H, self.N)

        r = heads(self.r_proj(mixed(self.x_r)))
        w = heads(-self.MAX_LOG_DECAY * torch.sigmoid(self.w_lora(mixed(self.x_w)).to(acc)))
        k = heads(self.k_proj(mixed(self.x_k)))
        v = heads(self.v_proj(mixed(self.x_v)))
        a = heads(torch.sigmoid(self.a_lora(mixed(self.x_a)).to(acc)))
        g = self.g_lora(mixed(self.x_g))
        kk = k * self.k_k.to(acc).view(self.H, self.N)
        kk = kk / kk.norm(2, -1, keepdim=True).clamp_min(1e-12)
        k = k * (1 + (a - 1) * self.k_a.to(acc).view(self.H, self.N))
        alpha, beta = -kk, kk * a
        S = state.get("S") if state is not None else None
        S = S.to(acc) if S is not None else x.new_zeros(B, self.H, self.N, self.N, dtype=acc)
        outs = []
        for t in range(T):  # the recurrent form, token by token
            u = (alpha[:, t].unsqueeze(-2) @ S)                                   # [B, H, 1, N]
            S = w[:, t].exp().unsqueeze(-1) * S + beta[:, t].unsqueeze(-1) * u + k[:, t].unsqueeze(-1) * v[:, t].unsqueeze(-2)
            outs.append((r[:, t].unsqueeze(-2) @ S).squeeze(-2))
        o = torch.stack(outs, 1)                                                  # [B, T, H, N]
        if state is not None:
            state["S"], state["shift"] = S, x[:, -1].clone()
        mean = o.mean(-1, keepdim=True)
        var = (o - mean).pow(2).mean(-1, keepdim=True)
        y = ((o - mean) * torch.rsqrt(var + self.N * self.eps)).reshape(B, T, -1)
        y = y * self.g_norm.weight.to(acc) + self.g_norm.bias.to(acc)
        bonus = (r * k * self.r_k.to(acc)).sum(-1, keepdim=True) * v
        y = (y + bonus.reshape(B, T, -1)) * g.to(acc)
        return self.o_proj(y.to(x.dtype))


def _make_op(layer, d_model):
    hp = {k: v for k, v in layer.items() if k != "type"}
    t = layer["type"]
    if t == "attn":
        return Attention(hp, d_model)
    if t == "swa":
        return Attention(hp, d_model, window=hp["window"])
    if t == "mamba2":
        return Mamba2(hp, d_model)
    if t in ("deltanet", "gdn"):
        return DeltaNet(hp, d_model, decay=(t == "gdn"))
    if t == "ffn":
        return Ffn(hp, d_model)
    if t == "gla":
        return Gla(hp, d_model)
    if t == "shortconv":
        return GatedShortConv(hp, d_model)
    if t == "rwkv7":
        return Rwkv7(hp, d_model)
    raise ValueError(f"flashnas: operator type {t!r} has no transformers implementation here")


class Sublayer(nn.Module):
    def __init__(self, layer, d_model, eps):
        super().__init__()
        self.type = layer["type"]
        self.norm = RMSNorm(d_model, eps)
        setattr(self, self.type, _make_op(layer, d_model))

    def forward(self, x, state, pos0):
        return x + getattr(self, self.type)(self.norm(x), state, pos0)


class FlashnasCache:
    """Decode state of every sublayer (a dict of tensors each) and the positions consumed."""

    def __init__(self, n_layers):
        self.layers = [dict() for _ in range(n_layers)]
        self.pos = 0   # positions consumed, meta tokens included
        self.seen = 0  # input tokens consumed

    def get_seq_length(self, layer_idx=0):
        return self.seen

    def reorder_cache(self, beam_idx):
        for state in self.layers:
            for name in state:
                state[name] = state[name].index_select(0, beam_idx.to(state[name].device))


def _check_tokenizer_files(folder, config):
    """The tokenizer files beside the weights must be the ones config.json names."""
    desc = getattr(config, "tokenizer", None) or {}
    if not os.path.isdir(folder) or not desc:
        return
    vocab = config.arch.get("vocab_size", 0)
    if desc.get("type") == "byte":
        path = os.path.join(folder, "tokenizer.json")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as f:
                tj = json.load(f)
            n = len((tj.get("model") or {}).get("vocab") or {})
            if n != 256:
                raise ValueError(f"flashnas: {path} has {n} tokens, but config.json says the model reads bytes "
                                 f"(256 tokens); write the folder again with flashnas export")
    elif desc.get("type") == "sentencepiece":
        path = os.path.join(folder, desc.get("model", "tokenizer.model"))
        if not os.path.exists(path):
            raise ValueError(f"flashnas: {path}: the SentencePiece model config.json names is missing")
        if desc.get("sha256"):
            with open(path, "rb") as f:
                got = hashlib.sha256(f.read()).hexdigest()
            if got != desc["sha256"]:
                raise ValueError(f"flashnas: {path} has SHA-256 {got[:12]}..., but config.json's tokenizer is "
                                 f"{desc['sha256'][:12]}...: another tokenizer than the model was trained with")
    if desc.get("vocab_size", 0) > vocab:
        raise ValueError(f"flashnas: config.json's tokenizer has {desc['vocab_size']} tokens, more than the "
                         f"model's vocabulary of {vocab}")


class FlashnasPreTrainedModel(PreTrainedModel):
    config_class = FlashnasConfig
    base_model_prefix = "flashnas"
    _no_split_modules = ["Sublayer"]

    def _init_weights(self, module):
        # Every parameter comes from model.safetensors.
        pass


class FlashnasForCausalLM(FlashnasPreTrainedModel, GenerationMixin):
    def __init__(self, config):
        super().__init__(config)
        arch = config.arch
        d, eps = arch["d_model"], arch.get("norm_eps", 1e-5)
        self.n_meta = arch.get("n_meta_tokens", 0)
        self.tied = arch.get("tie_embeddings", True)
        self.embed_tokens = nn.Embedding(arch["vocab_size"], d)
        if self.n_meta > 0:
            self.meta_tokens = nn.Parameter(torch.zeros(self.n_meta, d))
        self.layers = nn.ModuleList([Sublayer(l, d, eps) for l in arch["layers"]])
        self.norm = RMSNorm(d, eps)
        if not self.tied:
            self.lm_head = _linear(d, arch["vocab_size"])
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """As transformers loads, but a tensor that is missing, extra or of
        another shape, or a tokenizer that does not match config.json, is an
        error naming it (transformers itself would only warn and initialise
        missing weights at random)."""
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs)
        where = os.path.join(str(pretrained_model_name_or_path), "model.safetensors")
        problems = []
        for key, what in (("missing_keys", "missing"), ("unexpected_keys", "not in the architecture"),
                          ("mismatched_keys", "of another shape")):
            names = sorted(str(k if isinstance(k, str) else k[0]) for k in (info.get(key) or []))
            if names:
                problems.append(f"{what}: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}")
        if problems:
            raise ValueError(f"flashnas: {where} does not match config.json's arch ({'; '.join(problems)})")
        _check_tokenizer_files(str(pretrained_model_name_or_path), model.config)
        return (model, info) if want_info else model

    @classmethod
    def _supports_default_dynamic_cache(cls):
        return False  # FlashnasCache holds recurrent states, not only keys and values

    def get_input_embeddings(self):
        return self.embed_tokens

    def set_input_embeddings(self, value):
        self.embed_tokens = value

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, labels=None, use_cache=None,
                return_dict=None, **kwargs):
        if attention_mask is not None and not bool(attention_mask.bool().all()):
            raise ValueError("flashnas: padded batches are not supported; give sequences of one length")
        if use_cache is None:
            use_cache = past_key_values is not None
        cache = past_key_values
        if use_cache and cache is None:
            cache = FlashnasCache(len(self.layers))
        fresh = cache is None or cache.pos == 0
        B, T = input_ids.shape
        x = self.embed_tokens(input_ids)
        if fresh and self.n_meta > 0:
            x = torch.cat([self.meta_tokens.to(x.dtype).unsqueeze(0).expand(B, -1, -1), x], 1)
        pos0 = cache.pos if cache is not None else 0
        for i, layer in enumerate(self.layers):
            x = layer(x, cache.layers[i] if cache is not None else None, pos0)
        if cache is not None:
            cache.pos += x.shape[1]
            cache.seen += T
        if fresh and self.n_meta > 0:
            x = x[:, self.n_meta:]
        h = self.norm(x)
        logits = torch.matmul(h, self.embed_tokens.weight.t()) if self.tied else self.lm_head(h)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(), labels[:, 1:].reshape(-1))
        return CausalLMOutputWithPast(loss=loss, logits=logits, past_key_values=cache if use_cache else None)

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None, use_cache=True,
                                      **kwargs):
        if past_key_values is not None and past_key_values.seen > 0:
            input_ids = input_ids[:, past_key_values.seen:]
        return {"input_ids": input_ids, "past_key_values": past_key_values, "use_cache": use_cache,
                "attention_mask": attention_mask}

    def _reorder_cache(self, past_key_values, beam_idx):
        past_key_values.reorder_cache(beam_idx)
        return past_key_values
