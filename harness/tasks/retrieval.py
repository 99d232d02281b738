"""Image-text retrieval: ITC for every two-tower model, ITM re-ranking for fusion models (ALBEF style).

Training: in-batch contrastive loss (ITC) on projected, L2-normalised tower outputs with a learnable (or fixed)
temperature; captions of the same image are all positives. Fusion models add an image-text matching (ITM) loss with
one hard negative image per text and one hard negative text per image, sampled by ITC similarity.

Evaluation: the ITC similarity ranks every text for every image; fusion models then re-score the top ``k_test``
candidates with the ITM head (candidates outside the top-k keep -100, as in ALBEF). ``k_test`` at least the number of
candidates makes the re-ranking exhaustive. Recall follows ALBEF/LAVIS ``itm_eval`` (see docs/metrics.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.models.base import Encoded, XModel
from harness.tasks import register_task
from harness.tasks.base import Batcher, EvalResult, Examples, PrepareContext, Task, TaskData
from harness.tasks.images import split_images

NOT_CANDIDATE = -100.0
MAX_SAVED_SCORES = 20_000_000  # save score matrices up to this many entries (80 MB as float32)


class RetrievalHead(nn.Module):
    """Projections to the joint embedding space, the temperature, and the ITM head for fusion models."""

    def __init__(self, model: XModel, embed_dim: int, temperature: float, learn_temperature: bool) -> None:
        super().__init__()
        self.vision_proj = nn.Linear(model.image_dim, embed_dim)
        self.text_proj = nn.Linear(model.text_dim, embed_dim)
        self.temp = nn.Parameter(torch.tensor(float(temperature)), requires_grad=learn_temperature)
        self.itm = nn.Linear(model.feature_dim, 2) if model.can_fuse else None

    def embed_image(self, enc: Encoded) -> torch.Tensor:
        return F.normalize(self.vision_proj(enc.pooled).float(), dim=-1)

    def embed_text(self, enc: Encoded) -> torch.Tensor:
        return F.normalize(self.text_proj(enc.pooled).float(), dim=-1)

    def temperature(self) -> torch.Tensor:
        return self.temp.clamp(0.001, 0.5)


def select(enc: Encoded, idx: torch.Tensor) -> Encoded:
    """Rows ``idx`` of an encoding (tokens, pooled, mask, ids)."""
    pick = lambda t: None if t is None else t[idx]  # noqa: E731
    return Encoded(pick(enc.tokens), pick(enc.pooled), pick(enc.mask), pick(enc.ids))


@register_task
class RetrievalTask(Task):
    """ITC for every two-tower model, ITM re-ranking for fusion models; ALBEF/LAVIS recall."""

    type = "retrieval"
    main_metric = "r_mean"
    metrics = (
        "r_mean",
        "txt_r1",
        "txt_r5",
        "txt_r10",
        "txt_r_mean",
        "img_r1",
        "img_r5",
        "img_r10",
        "img_r_mean",
        "itc_r_mean",
    )
    requires = frozenset({"image", "text"})

    @classmethod
    def pairing_problem(cls, model_kind: str, modalities: frozenset[str], spec=None) -> str | None:
        if cls.requires <= modalities:
            return None
        return (
            f"retrieval needs an image tower and a text tower to rank images against texts; a {model_kind} model "
            f"reads only {', '.join(sorted(modalities))}"
        )

    def prepare(self, source, splits, ctx: PrepareContext) -> TaskData:
        parts = []
        for records in source.records(self.type, splits):
            images, rec, rows = split_images(ctx, records, self.name)
            ids, mask = ctx.tokenize(rec.texts)
            index = rows[torch.tensor(rec.txt2img, dtype=torch.long)]
            ex = Examples(images, index, ids, mask, None, list(range(len(rec.texts))))
            ex.extra.update(img2txt=rec.img2txt, txt2img=rec.txt2img, image_ids=rec.image_ids, image_rows=rows)
            parts.append(ex)
        info = {"eval_images": len(parts[2].extra["img2txt"]), "eval_texts": len(parts[2])}
        return TaskData(parts[0], parts[1], parts[2], info)

    def build_head(self, model: XModel, data: TaskData) -> nn.Module:
        s = self.spec
        return RetrievalHead(model, s.embed_dim, s.temperature, s.learn_temperature)

    def loss(self, model: XModel, head: RetrievalHead, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        img = model.encode_image(batch["image"])
        txt = model.encode_text(batch["input_ids"], batch["attention_mask"])
        zi, zt = head.embed_image(img), head.embed_text(txt)  # (B, E)
        sim_i2t = zi @ zt.t() / head.temperature()  # (B, B)
        rows = batch["image_row"]
        positive = rows.unsqueeze(1) == rows.unsqueeze(0)  # (B, B) same image
        targets = positive.float() / positive.sum(1, keepdim=True)
        itc = (
            -(F.log_softmax(sim_i2t, 1) * targets).sum(1).mean()
            - (F.log_softmax(sim_i2t.t(), 1) * targets).sum(1).mean()
        )
        loss = itc / 2
        if head.itm is not None:
            loss = loss + self._itm_loss(model, head, img, txt, sim_i2t.detach(), positive)
        return loss

    @staticmethod
    def _itm_loss(model, head, img: Encoded, txt: Encoded, sim_i2t: torch.Tensor, positive: torch.Tensor):
        negatives = ~positive
        usable = negatives.any(1)  # rows that have at least one negative in the batch
        b = sim_i2t.shape[0]
        if not bool(usable.any()):
            return sim_i2t.new_zeros(())
        w_i2t = F.softmax(sim_i2t, 1).masked_fill(positive, 0) + 1e-9 * negatives
        w_t2i = F.softmax(sim_i2t.t(), 1).masked_fill(positive, 0) + 1e-9 * negatives
        rows = usable.nonzero().squeeze(1)
        neg_txt = torch.multinomial(w_i2t[rows], 1).squeeze(1)  # hard negative text for each image
        neg_img = torch.multinomial(w_t2i[rows], 1).squeeze(1)  # hard negative image for each text
        pos = model.fuse(img, txt)  # (B, D)
        neg_a = model.fuse(select(img, neg_img), select(txt, rows))
        neg_b = model.fuse(select(img, rows), select(txt, neg_txt))
        logits = head.itm(torch.cat([pos, neg_a, neg_b])).float()
        labels = torch.cat([logits.new_ones(b), logits.new_zeros(2 * len(rows))]).long()
        return F.cross_entropy(logits, labels)

    @torch.no_grad()
    def evaluate(self, model, head, data, batcher: Batcher, batch_size: int, autocast, split="test") -> EvalResult:
        from harness.dist import map_batches

        ex = data.split(split)
        rows = ex.extra["image_rows"]
        keep = head.itm is not None  # the towers' outputs are fused again for the ITM re-ranking

        def embed_images(idx: torch.Tensor):
            with autocast():
                enc = model.encode_image(batcher.images(ex.images[rows[idx]]))
                return (enc if keep else None), head.embed_image(enc)

        def embed_texts(idx: torch.Tensor):
            b = batcher(ex, idx, with_targets=False)
            with autocast():
                enc = model.encode_text(b["input_ids"], b["attention_mask"])
                return (enc if keep else None), head.embed_text(enc)

        images, zi = map_batches(len(rows), batch_size, embed_images)  # sharded over ranks under torchrun
        texts, zt = map_batches(len(ex), batch_size, embed_texts)
        sim = zi @ zt.t()  # (Ni, Nt) cosine similarity
        if head.itm is not None:
            i2t = self._rerank(model, head, images, texts, sim, batch_size, autocast)
            t2i = self._rerank(model, head, texts, images, sim.t(), batch_size, autocast, swap=True)
        else:
            i2t, t2i = sim, sim.t()
        from harness.metrics.retrieval import recalls_from_ranks, retrieval_ranks
        from harness.stats.evidence import retrieval_evidence

        i2t_np, t2i_np = i2t.float().cpu().numpy(), t2i.float().cpu().numpy()
        img2txt, txt2img = ex.extra["img2txt"], ex.extra["txt2img"]
        ranks = retrieval_ranks(i2t_np, img2txt, txt2img, t2i_np)
        metrics = recalls_from_ranks(*ranks)
        itc_ranks = None
        if head.itm is not None:  # the ITC stage alone, to show what the ITM re-ranking adds
            itc_ranks = retrieval_ranks(sim.float().cpu().numpy(), img2txt, txt2img)
            metrics["itc_r_mean"] = recalls_from_ranks(*itc_ranks)["r_mean"]
        top = i2t.topk(min(5, i2t.shape[1]), dim=1).indices.cpu().tolist()
        image_ids = ex.extra["image_ids"]
        preds = [
            {"query": "image", "image_id": iid, "rank": int(r), "top5_texts": t, "hit_at_5": bool(set(t) & set(gt))}
            for iid, t, gt, r in zip(image_ids, top, img2txt, ranks[0])
        ] + [
            {"query": "text", "text": t, "image_id": image_ids[img], "rank": int(r)}
            for t, (img, r) in enumerate(zip(txt2img, ranks[1]))
        ]
        evidence = retrieval_evidence(image_ids, txt2img, ranks, itc_ranks)
        arrays = {"scores_i2t": i2t_np, "scores_t2i": t2i_np} if i2t_np.size <= MAX_SAVED_SCORES else {}
        notes = {"k_test": self.spec.k_test if head.itm is not None else None, "scoring": "itm" if head.itm else "itc"}
        return EvalResult(metrics, preds, notes, arrays, evidence=evidence)

    def _rerank(
        self,
        model,
        head,
        queries: Encoded,
        cands: Encoded,
        sim: torch.Tensor,
        batch_size: int,
        autocast,
        swap: bool = False,
    ) -> torch.Tensor:
        """Replace the top-k ITC candidates of each query by their ITM match logit; others get -100."""
        k = min(self.spec.k_test, sim.shape[1])
        top = sim.topk(k, dim=1).indices  # (Nq, k)
        scores = torch.full_like(sim, NOT_CANDIDATE)
        q_idx = torch.arange(sim.shape[0], device=sim.device).unsqueeze(1).expand(-1, k).reshape(-1)
        c_idx = top.reshape(-1)
        from harness.dist import map_batches

        def match(pos: torch.Tensor) -> torch.Tensor:
            pos = pos.to(q_idx.device)
            q, c = q_idx[pos], c_idx[pos]
            img, txt = (select(cands, c), select(queries, q)) if swap else (select(queries, q), select(cands, c))
            with autocast():
                return head.itm(model.fuse(img, txt)).float()[:, 1]

        scores[q_idx, c_idx] = map_batches(q_idx.numel(), batch_size, match).to(scores.dtype)
        return scores
