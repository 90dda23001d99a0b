"""PyTorch's side of deploy/gpu-check.sh: the same work as `tsd bench` on the same card, in bf16.

    decode  greedy KV-cache decoding of the Qwen2.5-1.5B shape with random weights: prefill a
            32-token prompt, then one token at a time, each step taking the token and its log-prob
            to the host as an actor does (what tsd's Generate does); prints tokens/s
    train   forward + backward of mean(log-probs) + mean(values) over batch x seq tokens, as
            `tsd bench train`; prints the fastest step
    hf      Hugging Face Qwen2ForCausalLM.generate (greedy, exactly --new tokens), same shape
    table   prints deploy/gpu-check.sh's results with ratios to tsd

Prompts are tsd's: token (7*row + 13*col) mod V.
"""
import argparse, json, math, sys, time

H, I, L, NH, NKV, V, THETA, EPS = 1536, 8960, 28, 12, 2, 151936, 1e6, 1e-6
HD = H // NH


def weights(torch, grad):
    g = torch.Generator(device="cuda").manual_seed(1)
    def mat(*shape):
        return (torch.randn(*shape, device="cuda", generator=g) * 0.02).bfloat16().requires_grad_(grad)
    def vec(n, fill):
        return torch.full((n,), fill, device="cuda", dtype=torch.bfloat16).requires_grad_(grad)
    w = {"embed": mat(V, H), "norm": vec(H, 1.0), "v1": mat(H, H), "b1": vec(H, 0.0), "v2": mat(H, H),
         "b2": vec(H, 0.0), "v3": mat(1, H), "b3": vec(1, 0.0)}
    for i in range(L):
        w[i] = {"n1": vec(H, 1.0), "n2": vec(H, 1.0), "q": mat(NH * HD, H), "qb": vec(NH * HD, 0.0),
                "k": mat(NKV * HD, H), "kb": vec(NKV * HD, 0.0), "v": mat(NKV * HD, H), "vb": vec(NKV * HD, 0.0),
                "o": mat(H, NH * HD), "gate": mat(I, H), "up": mat(I, H), "down": mat(H, I)}
    return w


class Qwen2:
    """Qwen2 in plain PyTorch ops with scaled_dot_product_attention, weights tied as in the 1.5B."""

    def __init__(self, torch, grad=False):
        self.t, self.F = torch, torch.nn.functional
        self.w = weights(torch, grad)
        inv = 1.0 / (THETA ** (torch.arange(0, HD, 2, device="cuda").double() / HD))
        ang = torch.outer(torch.arange(4096, device="cuda").double(), inv)
        self.cos = torch.cat([ang.cos(), ang.cos()], -1).bfloat16()
        self.sin = torch.cat([ang.sin(), ang.sin()], -1).bfloat16()

    def norm(self, x, w):
        xf = x.float()
        return w * (xf * self.t.rsqrt(xf.pow(2).mean(-1, keepdim=True) + EPS)).to(x.dtype)

    def rope(self, x, cos, sin):
        h = HD // 2
        return x * cos + self.t.cat([-x[..., h:], x[..., :h]], -1) * sin

    def forward(self, ids, pos, cache=None):
        F, B, S = self.F, ids.shape[0], ids.shape[1]
        x = self.w["embed"][ids]
        cos, sin = self.cos[pos][:, None], self.sin[pos][:, None]
        for i in range(L):
            w = self.w[i]
            h = self.norm(x, w["n1"])
            q = F.linear(h, w["q"], w["qb"]).view(B, S, NH, HD).transpose(1, 2)
            k = F.linear(h, w["k"], w["kb"]).view(B, S, NKV, HD).transpose(1, 2)
            v = F.linear(h, w["v"], w["vb"]).view(B, S, NKV, HD).transpose(1, 2)
            q, k = self.rope(q, cos, sin), self.rope(k, cos, sin)
            if cache is not None:
                if cache[i] is not None:
                    k, v = self.t.cat([cache[i][0], k], 2), self.t.cat([cache[i][1], v], 2)
                cache[i] = (k, v)
            k, v = k.repeat_interleave(NH // NKV, 1), v.repeat_interleave(NH // NKV, 1)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=S > 1)
            x = x + F.linear(a.transpose(1, 2).reshape(B, S, H), w["o"])
            h = self.norm(x, w["n2"])
            x = x + F.linear(F.silu(F.linear(h, w["gate"])) * F.linear(h, w["up"]), w["down"])
        return self.norm(x, self.w["norm"])

    def logits(self, h):
        return self.F.linear(h, self.w["embed"]).float()

    def value(self, h):
        F, w = self.F, self.w
        v = F.relu(F.linear(F.relu(F.linear(h, w["v1"], w["b1"])), w["v2"], w["b2"]))
        return self.t.tanh(F.linear(v, w["v3"], w["b3"])).squeeze(-1).float()


def prompt(torch, batch, n):
    return ((torch.arange(batch)[:, None] * 7 + torch.arange(n)[None] * 13) % V).cuda()


def decode(torch, a):
    m, best = Qwen2(torch), 0.0
    ids = prompt(torch, a.batch, 32)
    with torch.no_grad():
        for _ in range(a.repeat):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            cache = [None] * L
            pos = torch.arange(32, device="cuda").expand(a.batch, -1)
            h = m.forward(ids, pos, cache)[:, -1:]
            for step in range(a.new):
                logits = m.logits(h)[:, -1]
                nxt = logits.argmax(-1, keepdim=True)
                lp = logits.log_softmax(-1).gather(-1, nxt)
                toks, _ = nxt.view(-1).tolist(), lp.view(-1).tolist()  # to the host, as an actor
                nxt = torch.tensor(toks, device="cuda").view(-1, 1)
                h = m.forward(nxt, torch.full((a.batch, 1), 32 + step, device="cuda"), cache)
            torch.cuda.synchronize()
            best = max(best, a.batch * a.new / (time.perf_counter() - t0))
    return {"batch": a.batch, "tokens_per_s": round(best, 1)}


def train(torch, a):
    m, best = Qwen2(torch, grad=True), math.inf
    ids = prompt(torch, a.batch, a.seq)
    pos = torch.arange(a.seq, device="cuda").expand(a.batch, -1)
    for _ in range(a.repeat):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        h = m.forward(ids, pos)
        lp = m.logits(h[:, :-1]).log_softmax(-1)
        tok_lp = lp.gather(-1, ids[:, 1:, None]).squeeze(-1)
        entropy = -(lp.exp() * lp).sum(-1)
        loss = tok_lp.mean() + m.value(h[:, :-1]).mean()
        loss.backward()
        del entropy
        for p in [m.w[k] for k in m.w if not isinstance(k, int)] + [t for i in range(L) for t in m.w[i].values()]:
            p.grad = None
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return {"batch": a.batch, "seq": a.seq, "step_s": round(best, 3), "tokens_per_s": round(a.batch * a.seq / best, 1)}


def hf(torch, a):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    cfg = Qwen2Config(vocab_size=V, hidden_size=H, intermediate_size=I, num_hidden_layers=L,
                      num_attention_heads=NH, num_key_value_heads=NKV, rope_theta=THETA, rms_norm_eps=EPS,
                      tie_word_embeddings=True, max_position_embeddings=32768, torch_dtype="bfloat16")
    torch.manual_seed(1)
    with torch.device("cuda"):
        m = Qwen2ForCausalLM(cfg).to(torch.bfloat16).eval()
    ids, best = prompt(torch, a.batch, 32), 0.0
    for _ in range(a.repeat):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        m.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=a.new, min_new_tokens=a.new,
                   do_sample=False, pad_token_id=0)
        torch.cuda.synchronize()
        best = max(best, a.batch * a.new / (time.perf_counter() - t0))
    return {"batch": a.batch, "tokens_per_s": round(best, 1)}


def table(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    by = {(r["impl"], r["what"]): r for r in rows}
    whats = list(dict.fromkeys(r["what"] for r in rows))
    impls = [i for i in ("tsd", "pytorch", "hf-generate") if any(r["impl"] == i for r in rows)]
    def fig(r):
        return f'{r["step_s"]} s' if "step_s" in r else f'{r["tokens_per_s"]} tok/s'
    print("[speed ratio: >1 = tsd faster; mem: other's peak / tsd's]")
    print(f'{"":14}' + "".join(f"{i:>40}" for i in impls))
    for w in whats:
        cells = []
        t = by.get(("tsd", w))
        for i in impls:
            r = by.get((i, w))
            if r is None:
                cells.append(f'{"-":>40}')
                continue
            cell = f'{fig(r)}, {r["peak_mib"]} MiB'
            if i != "tsd" and t is not None:
                speed = (r["step_s"] / t["step_s"]) if "step_s" in r else (t["tokens_per_s"] / r["tokens_per_s"])
                cell += f" [{speed:.2f}x, mem {r['peak_mib'] / max(t['peak_mib'], 1):.2f}]"
            cells.append(f"{cell:>40}")
        print(f"{w:14}" + "".join(cells))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["decode", "train", "hf", "table"])
    ap.add_argument("results", nargs="?")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=2)
    a = ap.parse_args()
    if a.mode == "table":
        return table(a.results)
    import torch
    out = {"decode": decode, "train": train, "hf": hf}[a.mode](torch, a)
    out["torch"] = torch.__version__
    out["peak_alloc_mib"] = torch.cuda.max_memory_allocated() // 2**20
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
