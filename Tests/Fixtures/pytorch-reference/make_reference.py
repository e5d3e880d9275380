"""Writes reference.safetensors: one batch through the tiny model and adapter beside this
script, computed by PyTorch, transformers and PEFT in float64 (not by tinymixer).

    python make_reference.py        # needs torch, transformers, peft, safetensors

The batch (input_ids, targets, answer_mask) is read from batch.safetensors, which
`tinymixer debug-state toy-sst2 --base model --adapter adapter --examples 4` wrote: only
the token ids come from tinymixer. Everything else here is PyTorch's own computation:
the logits, the loss (mean cross-entropy over the answer positions) and the gradient of
that loss with respect to every LoRA factor. `swift test` (and `tinymixer debug-state
--check reference.safetensors ...`) recomputes them in tinymixer and compares.
"""

from pathlib import Path

import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import LlamaForCausalLM

here = Path(__file__).resolve().parent
batch = load_file(here / "batch.safetensors")
input_ids, targets = batch["input_ids"], batch["targets"]
mask = batch["answer_mask"].bool()

model = LlamaForCausalLM.from_pretrained(here / "model", torch_dtype=torch.float64)
model = PeftModel.from_pretrained(model, here / "adapter", is_trainable=True)
model = model.double()
model.eval()  # no dropout (the adapter has none either)

# No attention mask: padding sits at the end of each row, so the causal mask alone keeps
# every real position from seeing it, as in tinymixer.
logits = model(input_ids=input_ids).logits
loss = torch.nn.functional.cross_entropy(logits[mask], targets[mask])
loss.backward()

reference = {
    "input_ids": input_ids,
    "targets": targets,
    "answer_mask": batch["answer_mask"],
    "logits": logits.detach(),
    "loss": loss.detach(),
}
for name, parameter in model.named_parameters():
    if parameter.requires_grad:
        # PEFT's in-memory name -> the adapter file's (and tinymixer's) name.
        short = name.removeprefix("base_model.model.").replace(".default", "")
        reference["grad." + short] = parameter.grad.detach()
save_file(
    {k: v.contiguous() for k, v in reference.items()},
    here / "reference.safetensors",
    metadata={
        "made_by": f"torch {torch.__version__}, make_reference.py, float64",
        "loss": "mean cross-entropy over answer_mask positions, predicting targets",
    },
)
print(f"loss {loss.item():.12f}; {len(reference) - 5} gradients written")
