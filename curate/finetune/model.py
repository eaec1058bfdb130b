"""The model being trained: the base OFA model loaded through ModelScope's own pipeline, its
training-mode preprocessor, the loss, and the output folder it is saved as.

Training goes through the same objects inference uses: `pipeline.model.model` is the
`OFAModel` that is trained, the pipeline's preprocessor class in ModeKeys.TRAIN mode makes
the training samples (the same pixels and prompt tokens as at inference, plus `target` and
`prev_output_tokens`; for entailment also the constraint mask that limits the answer to
yes / no / maybe), and ModelScope's `collate_fn` makes the batches. The loss is the label-
smoothed cross-entropy of ModelScope's OFA trainer criterion (`AdjustLabelSmoothedCross
EntropyCriterion`, without its rarely used options), written out here because importing
that module imports the whole trainer stack.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

from indexer.errors import ModelUnavailable
from indexer.hub import load_modelscope_pipeline, modelscope_model_dir

PIPELINE_TASKS = {"captions": "image-captioning", "entailment": "visual-entailment"}
ROLES = {"captions": "caption model", "entailment": "entailment model"}
WEIGHTS = "model.safetensors"
_WEIGHT_FILES = (".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".h5", ".msgpack")
_OURS = ("finetune.json", "checkpoint")
_TRAINING_KEYS = ("source", "patch_image", "patch_mask", "target", "prev_output_tokens",
                  "constraint_mask")  # fmt: skip


class Trainee:
    """The base model of `task` ("captions" / "entailment") from `base` (a ModelScope id or
    folder), ready to train on `device`. ModelUnavailable with one line when it cannot load
    or is a model for the other task."""

    def __init__(self, task: str, base: str, device: str, trust_remote_code: bool = False):
        from modelscope.utils.constant import ModeKeys

        self.task, self.base = task, base
        role = ROLES[task]
        self.folder = modelscope_model_dir(base, role, "--base")
        _check_task(self.folder, task, base)
        self.pipeline = load_modelscope_pipeline(
            PIPELINE_TASKS[task], self.folder, role, "--base", device, trust_remote_code
        )
        self.ofa = self.pipeline.model  # OfaForAllTasks
        self.net = self.ofa.model  # OFAModel: the weights that are trained
        self.tokenizer = self.ofa.tokenizer
        inference = self.pipeline.preprocessor.preprocess
        self.preprocess = type(inference)(inference.cfg, self.folder, mode=ModeKeys.TRAIN)
        self.preprocess.column_map.setdefault("text", "text")
        self.preprocess.column_map.setdefault("relation", "relation")
        # ModelScope 1.40.2's training-mode entailment sample calls `tgt_dict.bos()` on a
        # plain dict; the answer constraint mask is made here instead (`_answer_mask`)
        self.answer_trie, self.preprocess.constraint_trie = self.preprocess.constraint_trie, None

    @property
    def device(self):
        return next(self.net.parameters()).device

    @property
    def d_model(self) -> int:
        return int(self.net.config.d_model)

    def sample(self, picture, row) -> dict:
        """One training sample (ModelScope's training-mode preprocessing) of a picture and
        its CSV row."""
        data = {"image": picture}
        if self.task == "captions":
            data[self.preprocess.column_map["text"]] = row.text
            return self.preprocess(data)
        data.update(text=row.text, relation=row.label)
        sample = self.preprocess(data)
        if self.answer_trie is not None:
            sample["constraint_mask"] = self._answer_mask(sample["target"])
        return sample

    def _answer_mask(self, target):
        """Which tokens may come at each target position (the answers' trie, as the
        preprocessor would build it): [target length, vocabulary] booleans."""
        import torch

        pad, bos = self.tokenizer.pad_token_id, self.tokenizer.bos_token_id
        answer = int(target.ne(pad).sum()) - 1  # the answer's tokens, then end of sentence
        mask = torch.zeros((len(target), len(self.preprocess.tgt_dict)), dtype=torch.bool)
        start = len(target) - answer - 1
        for i in range(start, len(target)):
            prefix = [bos] + target[start:i].tolist()
            mask[i][self.answer_trie.get_next_layer(prefix)] = True
        return mask

    def collate(self, samples: list[dict]) -> dict:
        """A batch of samples as tensors on the model's device (ModelScope's collate_fn)."""
        from modelscope.preprocessors.ofa.utils.collate import collate_fn

        # only what training reads: collate_fn's np.array of the entailment decoder prompts
        # fails on prompts of different lengths (numpy refuses ragged arrays)
        samples = [{k: v for k, v in s.items() if k in _TRAINING_KEYS} for s in samples]
        batch = collate_fn(samples, self.tokenizer.pad_token_id, self.tokenizer.eos_token_id)
        device = self.device
        batch["net_input"] = {k: v.to(device) for k, v in batch["net_input"].items()}
        batch["target"] = batch["target"].to(device)
        if "constraint_masks" in batch:
            batch["constraint_masks"] = batch["constraint_masks"].to(device)
        return batch

    def loss(self, batch: dict, label_smoothing: float):
        """(mean loss over the target tokens, tokens, tokens predicted right) of one batch."""
        logits = self.net(**batch["net_input"]).logits
        return sequence_loss(logits, batch["target"], self.tokenizer.pad_token_id,
                             label_smoothing, batch.get("constraint_masks"))  # fmt: skip

    def save(self, out: Path) -> None:
        """Write the trained model into `out` as a complete ModelScope model folder."""
        save_model_folder(self.folder, self.net.state_dict(), out)


def _check_task(folder: str, task: str, base: str) -> None:
    try:
        configuration = json.loads(Path(folder, "configuration.json").read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise ModelUnavailable(f"base model {base!r}: unreadable configuration.json "
                               f"({error})") from None  # fmt: skip
    found = configuration.get("task")
    if found != PIPELINE_TASKS[task]:
        raise ModelUnavailable(f"base model {base!r} is a {found} model; `indexer finetune "
                               f"{task}` needs a {PIPELINE_TASKS[task]} model")  # fmt: skip


def sequence_loss(logits, target, pad: int, epsilon: float, constraint_masks=None):
    """Label-smoothed cross-entropy over the non-pad target tokens, as ModelScope's OFA
    criterion computes it (with a constraint mask, smoothing spreads over the allowed
    tokens only). Returns (mean loss, tokens, tokens whose argmax is the target)."""
    import torch

    if constraint_masks is not None:
        logits = logits.masked_fill(~constraint_masks, -math.inf)
    keep = target.ne(pad)
    log_probs = torch.log_softmax(logits.float(), dim=-1)[keep]
    wanted = target[keep]
    nll = -log_probs.gather(-1, wanted.unsqueeze(-1)).squeeze(-1)
    if constraint_masks is not None:
        allowed = constraint_masks[keep]
        smooth = -log_probs.masked_fill(~allowed, 0).sum(-1)
        eps_i = epsilon / (allowed.sum(-1) - 1 + 1e-6)
    else:
        smooth = -log_probs.sum(-1)
        eps_i = epsilon / (log_probs.size(-1) - 1)
    loss = ((1.0 - epsilon - eps_i) * nll + eps_i * smooth).mean()
    right = int(log_probs.argmax(-1).eq(wanted).sum())
    return loss, int(wanted.numel()), right


def save_model_folder(base_folder: str, state_dict: dict, out: Path) -> None:
    """`out` as a ModelScope model folder: every file of the base folder but its weights and
    hidden files (configuration.json, config.json, vocabulary, answer map, README, ...), and
    `state_dict` as model.safetensors. OFA shares one tensor between its embeddings and its
    output projection without declaring the tie; each gets its own equal copy, which
    `from_pretrained` reloads exactly (declaring the tie would re-initialise one)."""
    from safetensors.torch import save_file

    out.mkdir(parents=True, exist_ok=True)
    for entry in sorted(Path(base_folder).iterdir()):
        if _copied(entry):
            shutil.copy2(entry, out / entry.name)
    tensors = {k: v.detach().to("cpu").clone().contiguous() for k, v in state_dict.items()}
    partial = out / (WEIGHTS + ".partial")
    save_file(tensors, str(partial), metadata={"format": "pt"})
    os.replace(partial, out / WEIGHTS)


def _copied(entry: Path) -> bool:
    name = entry.name
    return (entry.is_file() and not name.startswith(".") and name not in _OURS
            and not name.lower().endswith(_WEIGHT_FILES))  # fmt: skip
