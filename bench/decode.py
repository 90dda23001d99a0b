"""Greedy KV-cache decoding of a Qwen2 checkpoint in PyTorch eager, the baseline for tsd's Go decoder.

Same libtorch (Debian's python3-torch 1.13 wraps the libtorch tsd links), same model, same work:
prefill a prompt, then decode one token at a time with a KV cache. Each step does what tsd's
Generate does: pick the token, take its log-prob, hand both to the host (an RL actor needs them)
and feed the token back; --bare keeps only the argmax. Prints tokens/s as JSON.

    python3 bench/decode.py MODEL_DIR --batch 1 --prompt 32 --new 128 --threads 2
"""
import argparse, json, math, struct, time

import torch


def load_safetensors(path):
    dtypes = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = bytearray(f.read())
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        t = torch.frombuffer(data[a:b], dtype=dtypes[e["dtype"]]) if b > a else torch.empty(0)
        out[name] = t.reshape(e["shape"]).float()
    return out


class Qwen2:
    def __init__(self, d):
        cfg = json.load(open(f"{d}/config.json"))
        self.w = load_safetensors(f"{d}/model.safetensors")
        self.L = cfg["num_hidden_layers"]
        self.nh, self.nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
        self.hd = cfg["hidden_size"] // self.nh
        self.eps = cfg["rms_norm_eps"]
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, self.hd, 2).float() / self.hd))
        ang = torch.outer(torch.arange(4096).float(), inv)
        self.cos = torch.cat([ang.cos(), ang.cos()], -1)
        self.sin = torch.cat([ang.sin(), ang.sin()], -1)
        self.head = self.w.get("lm_head.weight", self.w["model.embed_tokens.weight"])

    def norm(self, x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rope(self, x, cos, sin):
        h = self.hd // 2
        return x * cos + torch.cat([-x[..., h:], x[..., :h]], -1) * sin

    def forward(self, ids, pos, cache):
        B, S = ids.shape
        x = self.w["model.embed_tokens.weight"][ids]
        cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]
        for i in range(self.L):
            p = f"model.layers.{i}."
            h = self.norm(x, self.w[p + "input_layernorm.weight"])
            lin = lambda n, b=True: torch.nn.functional.linear(h, self.w[p + n + ".weight"], self.w.get(p + n + ".bias") if b else None)
            q = lin("self_attn.q_proj").view(B, S, self.nh, self.hd).transpose(1, 2)
            k = lin("self_attn.k_proj").view(B, S, self.nkv, self.hd).transpose(1, 2)
            v = lin("self_attn.v_proj").view(B, S, self.nkv, self.hd).transpose(1, 2)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            if cache[i] is not None:
                k, v = torch.cat([cache[i][0], k], 2), torch.cat([cache[i][1], v], 2)
            cache[i] = (k, v)
            T, rep = k.shape[2], self.nh // self.nkv
            s = (q.reshape(B, self.nkv, rep * S, self.hd) / math.sqrt(self.hd)) @ k.transpose(-1, -2)
            if S > 1:
                s = s.view(B, self.nkv, rep, S, T) + torch.full((S, T), -1e30).triu(T - S + 1)
            a = (s.view(B, self.nkv, rep * S, T).softmax(-1) @ v).view(B, self.nh, S, self.hd)
            a = a.transpose(1, 2).reshape(B, S, -1)
            x = x + torch.nn.functional.linear(a, self.w[p + "self_attn.o_proj.weight"])
            h = self.norm(x, self.w[p + "post_attention_layernorm.weight"])
            g = torch.nn.functional.silu(torch.nn.functional.linear(h, self.w[p + "mlp.gate_proj.weight"]))
            u = torch.nn.functional.linear(h, self.w[p + "mlp.up_proj.weight"])
            x = x + torch.nn.functional.linear(g * u, self.w[p + "mlp.down_proj.weight"])
        return torch.nn.functional.linear(self.norm(x[:, -1], self.w["model.norm.weight"]), self.head)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--bare", action="store_true", help="argmax only: no log-probs, no host copies")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = Qwen2(a.model)
    V = m.head.shape[0]
    ids = (torch.arange(a.batch)[:, None] * 7 + torch.arange(a.prompt)[None] * 13) % V
    best = 0.0
    with torch.no_grad():
        for _ in range(a.repeat):
            t0 = time.perf_counter()
            cache = [None] * m.L
            pos = torch.arange(a.prompt).expand(a.batch, -1)
            logits = m.forward(ids, pos, cache)
            for step in range(a.new):
                nxt = logits.argmax(-1, keepdim=True)  # (B, 1)
                if not a.bare:
                    lp = logits.log_softmax(-1).gather(-1, nxt)  # (B, 1)
                    toks, _ = nxt.view(-1).tolist(), lp.view(-1).tolist()
                    nxt = torch.tensor(toks).view(-1, 1)
                logits = m.forward(nxt, torch.full((a.batch, 1), a.prompt + step), cache)
            best = max(best, a.batch * a.new / (time.perf_counter() - t0))
    print(json.dumps({"impl": "python-eager", "torch": torch.__version__, "batch": a.batch, "tokens_per_s": round(best, 1)}))


if __name__ == "__main__":
    main()
