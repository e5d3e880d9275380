"""The training steps of `tinymixer bench train-base` and `bench train-mixer`, in PyTorch
eager mode, for comparison on the same machine (not a dependency of the build or tests).

    python pytorch_step.py base  [--runs 11] [--threads 2]   # needs torch, transformers
    python pytorch_step.py mixer [--runs 11] [--threads 2]
    python pytorch_step.py mixer-stacked [--runs 11] [--threads 2]
    python pytorch_step.py mixer --serve                     # for tinymixer bench --pytorch

The same work as tinymixer's step: the bench model (Llama, vocabulary 512, width 128,
4 layers of 4 heads, MLP 384, context 64), a random batch of 32 rows whose every token is
scored, forward, backward and AdamW. `base` trains every parameter. `mixer` freezes the
base and puts six rank-8 LoRA experts (alpha 16) and a router at q, k, v and o of every
layer: hard-soft top-2 routing (the top-2 weights renormalised going forward, the dense
softmax's gradient coming back), every expert computed, and RSL (alpha 0.01,
lambda 0.01, the entropy as a bonus) averaged over the 16 sites. `mixer` computes each
expert's output, `[batch, length, 6, width]`, and weights them (einsums: the formula as
written); `mixer-stacked` is the same function computed as tinymixer's routed sites do,
`((x A_all^T) * (w S)) B_all^T` with the experts' factors stacked, so that no expert's
whole output is ever formed.

Prints the median milliseconds per step over `--runs` steps, after two warm-up steps.
With `--serve` it prints one line about itself after the warm-up, then, for each line N it
reads, runs N steps and prints the seconds of the last: `tinymixer bench train-base|
train-mixer --pytorch PYTHON` times it so, in turns with its own step.
"""

import argparse
import sys
import time

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

EXPERTS, RANK, ALPHA, TOP_K = 6, 8, 16.0, 2


class RoutedLinear(nn.Module):
    """A frozen Linear plus a router over LoRA experts: y = W x + sum_e w_e s B_e A_e x."""

    def __init__(self, base: nn.Linear, stacked: bool = False):
        super().__init__()
        self.base = base
        self.stacked = stacked
        inputs, outputs = base.in_features, base.out_features
        self.down = nn.Parameter(torch.randn(EXPERTS, RANK, inputs) / inputs**0.5)
        self.up = nn.Parameter(torch.randn(EXPERTS, outputs, RANK) * 0.01)
        self.router = nn.Linear(inputs, EXPERTS, bias=False)
        self.last = None  # (probabilities, selected) for the routing loss

    def forward(self, x):
        probabilities = torch.softmax(self.router(x), dim=-1)
        top = probabilities.topk(TOP_K, dim=-1)
        hard = torch.zeros_like(probabilities).scatter(
            -1, top.indices, top.values / top.values.sum(-1, keepdim=True))
        weights = hard + probabilities - probabilities.detach()  # straight-through
        self.last = (probabilities, top.indices)
        if self.stacked:
            # x A_all^T: [b, t, E R]; each expert's weight times its scale spread over its
            # R columns (w S); then B_all, [outputs, E R], as one product.
            low = x @ self.down.reshape(EXPERTS * RANK, -1).t()
            low = low * (weights * (ALPHA / RANK)).repeat_interleave(RANK, dim=-1)
            up = self.up.permute(1, 0, 2).reshape(self.up.shape[1], EXPERTS * RANK)
            return self.base(x) + low @ up.t()
        low = torch.einsum("bti,eri->bter", x, self.down)
        experts = torch.einsum("bter,eor->bteo", low, self.up) * (ALPHA / RANK)
        return self.base(x) + torch.einsum("bte,bteo->bto", weights, experts)


def routing_loss(sites, alpha=0.01, lam=0.01):
    total = 0.0
    for site in sites:
        probabilities, selected = site.last
        p = probabilities.reshape(-1, EXPERTS)
        share = torch.zeros(EXPERTS).index_add_(
            0, selected.reshape(-1), torch.ones(selected.numel())) / selected.numel()
        balance = EXPERTS * (p.mean(0) * share).sum()
        entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1).mean()
        total = total + alpha * balance - lam * entropy
    return total / len(sites)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["base", "mixer", "mixer-stacked"])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--serve", action="store_true")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=512, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=4, intermediate_size=384, max_position_embeddings=64,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=False)
    model = LlamaForCausalLM(config)
    sites = []
    if arguments.what.startswith("mixer"):
        model.requires_grad_(False)
        for layer in model.model.layers:
            attention = layer.self_attn
            for name in ["q_proj", "k_proj", "v_proj", "o_proj"]:
                routed = RoutedLinear(
                    getattr(attention, name), stacked=arguments.what == "mixer-stacked")
                setattr(attention, name, routed)
                sites.append(routed)
    trained = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=1e-4)
    rows = torch.randint(0, 512, (32, 65))
    tokens, targets = rows[:, :-1], rows[:, 1:]

    def step():
        logits = model(input_ids=tokens).logits
        loss = nn.functional.cross_entropy(logits.reshape(-1, 512), targets.reshape(-1))
        if sites:
            loss = loss + routing_loss(sites)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(2):
        step()
    form = {"mixer": "every expert's output formed (einsums), ",
            "mixer-stacked": "the experts stacked as tinymixer's, "}.get(arguments.what, "")
    about = (f"{form}torch {torch.__version__}, {torch.get_num_threads()} threads, "
             f"{sum(p.numel() for p in trained)} trained")
    if arguments.serve:
        print(f"pytorch {arguments.what}: {about}", flush=True)
        for line in sys.stdin:
            for _ in range(int(line)):
                start = time.perf_counter()
                step()
                seconds = time.perf_counter() - start
            print(seconds, flush=True)
        return
    times = []
    for _ in range(arguments.runs):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    times.sort()
    print(f"pytorch {arguments.what}: {1000 * times[len(times) // 2]:.1f} ms/step "
          f"(median of {arguments.runs}; {about})")


if __name__ == "__main__":
    main()
