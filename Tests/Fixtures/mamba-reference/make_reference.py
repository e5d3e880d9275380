"""Writes reference.safetensors: the logits of a fixed batch through the tiny Mamba in
`model/`, computed by PyTorch and transformers' MambaForCausalLM (not by tinymixer).

    python make_reference.py        # needs torch, transformers, safetensors

It also fails unless transformers loads the model directory with no missing, unexpected
or mismatched tensor. `swift test` (NNTests) reads the same directory with tinymixer,
recomputes the logits and compares.
"""

from pathlib import Path

import torch
from safetensors.torch import save_file
from transformers import MambaForCausalLM

here = Path(__file__).resolve().parent
model, info = MambaForCausalLM.from_pretrained(here / "model", output_loading_info=True)
problems = {kind: names for kind, names in info.items() if names}
assert not problems, f"transformers did not load the directory cleanly: {problems}"
model.eval()

# Two rows of nine token ids, every id below the vocabulary of 37.
input_ids = torch.tensor([[(i * 7 + 3) % 37 for i in range(r * 9, r * 9 + 9)] for r in range(2)])
with torch.no_grad():
    logits = model(input_ids).logits.float()
save_file(
    {"input_ids": input_ids.to(torch.int64), "logits": logits.contiguous()},
    here / "reference.safetensors",
    metadata={"torch": torch.__version__, "transformers": __import__("transformers").__version__},
)
print("wrote reference.safetensors:", tuple(logits.shape))
