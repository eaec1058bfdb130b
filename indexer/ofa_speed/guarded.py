"""The exact profile's guard: a beam search that notes where rounding could decide.

The incremental decoder sums in another order than the unmodified one, so its scores
differ in the last bits (measured: at most 5e-5 on a cumulative candidate score). The
guard finds the images for which that could change the outcome; the caller captions them
again with the unmodified arithmetic.
"""

from __future__ import annotations

from typing import Any

# Log-probability units: decisions closer than this are redone with strict arithmetic.
TIE_MARGIN = 1e-3


class NearTie(Exception):
    """Raised inside the guarded beam search once every image's outcome is in doubt."""


def final_tie(hypos: list, margin: float, keep: int) -> bool:
    """True if the order of one image's ``keep`` best finished hypotheses is within ``margin``."""
    scores = [float(h["score"]) for h in hypos[: keep + 1]]
    return any(a - b < margin for a, b in zip(scores, scores[1:], strict=False))


def guarded_search(generator: Any, margin: float, keep: int) -> Any:
    """A ``BeamSearch`` that notes the images whose outcome rounding could change.

    ``SequenceGenerator._generate`` uses the ranked ``2 * beam`` candidates of each step in
    three ways, and only these orderings decide which hypotheses exist and finish:

    * eos candidates ranked in the top ``beam`` are finished (a cut after rank ``beam``);
    * the ``beam`` best non-eos candidates continue (a cut after the ``beam``-th of them);
    * if more eos candidates qualify than an image has free slots (``beam`` finished
      hypotheses each), the better-ranked ones win (a cut inside that eos list).

    The order inside the continuing set only permutes beam rows, which are computed
    independently. If each cut separates values at least ``margin`` apart, score errors
    below ``margin / 2`` cannot change the outcome; otherwise the image goes into
    ``tripped`` (and ``NearTie`` ends the search once every image is in it). Candidates
    at -inf never finish and never beat a finite one, so their order is ignored.
    ``keep`` is how many finished hypotheses the caller returns (their order is checked
    by ``final_tie``). Call ``reset(images)`` before each search.
    """
    from modelscope.models.multi_modal.ofa.generate.search import BeamSearch

    class GuardedBeamSearch(BeamSearch):
        def reset(self, count):
            self.count = count  # images in this call
            self.tripped = set()  # images whose outcome rounding could decide
            self.finished = {}  # image index -> finished hypotheses so far

        def step(self, step, lprobs, scores, prev_output_tokens=None, original_batch_idxs=None):
            # BeamSearch.step (modelscope 1.40.2), with one more candidate from the same
            # topk for the guard; the extra one only matters under an exact tie, which the
            # guard rejects anyway.
            import torch

            bsz, beam, vocab = lprobs.size()
            if step == 0:
                lprobs = lprobs[:, ::beam, :].contiguous()  # all beams are equal at step 0
            else:
                lprobs = lprobs + scores[:, :, step - 1].unsqueeze(-1)
            flat = lprobs.view(bsz, -1)
            k = min(beam * 2, flat.size(1) - 1)  # -1: never select pad
            top = torch.topk(flat, k=min(k + 1, flat.size(1)))
            images = (
                original_batch_idxs.tolist() if original_batch_idxs is not None
                else list(range(bsz))
            )  # fmt: skip
            values, tokens = top.values.tolist(), top.indices.remainder(vocab).tolist()
            for image, vals, toks in zip(images, values, tokens, strict=True):
                if image not in self.tripped and self._unsafe(image, vals, toks, beam):
                    self.tripped.add(image)
                    if len(self.tripped) == self.count:
                        raise NearTie
            indices = top.indices[:, :k]
            beams = torch.div(indices, vocab, rounding_mode="floor")
            return top.values[:, :k], indices.fmod(vocab), beams

        def _unsafe(self, image, vals, toks, beam):
            eos, margin = self.guard_eos, self.margin
            finishing = _finishing(vals, toks, beam, eos, margin)
            if finishing is None or _continuing_tie(vals, toks, beam, eos, margin):
                return True
            before = self.finished.get(image, 0)
            free = beam - before
            if 0 < free < len(finishing) and finishing[free - 1] - finishing[free] < margin:
                return True
            self.finished[image] = min(beam, before + len(finishing))
            return False

    search = GuardedBeamSearch(generator.tokenizer)
    search.guard_eos = generator.eos  # the generator's, as _generate finishes on it
    search.margin = margin
    search.keep = keep
    search.reset(1)
    return search


def _finishing(vals: list, toks: list, beam: int, eos: int, margin: float) -> list | None:
    """The scores of the eos candidates that finish this step, best first; None if one of
    them could drop out of the top ``beam``, or another could move into it."""
    inf = float("inf")
    edge_in = vals[beam - 1] if len(vals) >= beam else -inf
    edge_out = vals[beam] if len(vals) > beam else -inf
    finishing = []
    for rank, (value, token) in enumerate(zip(vals, toks, strict=True)):
        if token != eos or value == -inf:
            continue
        if rank < beam:
            finishing.append(value)
            if value - edge_out < margin:
                return None
        elif edge_in - value < margin:
            return None
    return finishing


def _continuing_tie(vals: list, toks: list, beam: int, eos: int, margin: float) -> bool:
    """Whether the ``beam``-th best non-eos candidate is within ``margin`` of the next."""
    alive = [v for v, t in zip(vals, toks, strict=True) if t != eos and v != -float("inf")]
    if len(alive) < beam:
        return False
    # the best non-eos candidate left out: the next one here, or at most vals[-1]
    left_out = alive[beam] if len(alive) > beam else vals[-1]
    return alive[beam - 1] - left_out < margin
