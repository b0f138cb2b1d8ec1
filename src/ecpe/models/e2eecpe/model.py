"""E2EECPE: end-to-end emotion-cause pair extraction via learning to link (Song et al., 2020, §3).

word vectors -> CNN clause encoder (eqs. 1-3; our options: a word-level BiLSTM + attention, or both) -> clause
BiLSTM (eq. 4) -> emotion / cause vertices (eqs. 5-6) -> biaffine pair matrix M (eq. 7) -> sigmoid (eq. 8) * position
weights A (eqs. 9-10) -> threshold (eq. 18), with auxiliary emotion and cause classifiers (eqs. 11-14) trained jointly
(eqs. 15-17). The steps our options change (clause context, pair scorer, pair loss) are strategies of
:mod:`.variants`, the paper's step by default.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...config import CLAUSE_CONTEXTS, CLAUSE_ENCODERS, CLAUSE_RULES, PAIR_LOSSES, PAIR_SCORERS, E2EConfig
from ...data.batching import ChunkTensors, DocBatch, DocTensors, char_id_matrix
from ...data.corpus import Document
from ...data.vocab import Vocab
from ...lexicon import lexicon_classes
from ...modules import ClauseCNN, Biaffine, Dropout, bilstm_padded, position_weights
from ...modules.compat import tensor_version
from ...modules.rnn import AttentionClauseEncoder, pack_clauses
from ..base import Decoded, ECPEModel, add_pair_clauses
from .variants import clause_context, pair_loss, pair_objective, pair_scorer, rank_loss

__all__ = ["E2EECPE", "pair_loss", "rank_loss", "PAIR_LOSSES", "CLAUSE_ENCODERS", "CLAUSE_CONTEXTS", "PAIR_SCORERS",
           "CLAUSE_RULES"]


def head(hidden: nn.Linear, out: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """An auxiliary classifier's log-probabilities [..., 2]: log_softmax(out(relu(hidden(h)))) (eqs. 11-14).

    Always in float32: under bfloat16 autocast (bf16 training) a log_softmax of bfloat16 logits stays bfloat16,
    and its rounding, against a teacher's soft targets, made students diverge (docs/accuracy.md)."""
    return F.log_softmax(out(torch.relu(hidden(h))).float(), -1)


class E2EECPE(ECPEModel):
    """The E2EECPE model.

    Args:
        vocab: word vocabulary (index 0 = padding).
        config: hyper-parameters; paper values by default.
        embeddings: optional [len(vocab), embed_dim] initial word vectors.
    """

    name = "e2eecpe"
    config_class = E2EConfig
    schedule = "single"

    def __init__(self, vocab: Vocab, config: E2EConfig | None = None, embeddings: np.ndarray | None = None,
                 lexicon_features: np.ndarray | None = None):
        super().__init__(vocab, config)
        c = self.config
        # sparse gradients: a batch touches a few hundred of the vocabulary's rows (see param_groups)
        self.embed = nn.Embedding(len(vocab), c.embed_dim, padding_idx=0, sparse=not c.freeze_embeddings)
        if embeddings is not None:
            self.embed.weight.data.copy_(torch.as_tensor(embeddings))
        self.embed.weight.requires_grad_(not c.freeze_embeddings)
        self.dropout = Dropout(c.dropout)
        self._cache_words, self._word_table = False, None  # see cache_word_projections
        # word dropout (Kiperwasser & Goldberg 2016): rare training words are replaced by <unk> now and then,
        # so <unk>, which every unseen word at test time maps to, is trained too. Not saved: training only.
        counts = torch.tensor(vocab.counts if vocab.counts else [0] * len(vocab), dtype=torch.float32)
        unk_prob = c.word_dropout / (c.word_dropout + counts) if c.word_dropout > 0 else torch.zeros(len(vocab))
        unk_prob[:2] = 0.0
        self.register_buffer("unk_prob", unk_prob, persistent=False)
        if c.char_backoff:
            # ids of each vocabulary word's characters that are words too (multi-character words only)
            self.register_buffer("word_chars", char_id_matrix(vocab, vocab.itos), persistent=False)
        # eqs. 1-3: words -> clause vector (the paper's CNN; our options: a word BiLSTM + attention, or both)
        encoders = c.clause_encoder.split("+")
        self.cnn = ClauseCNN(c.embed_dim, c.kernel_sizes, c.filters) if "cnn" in encoders else None
        # the two-stage baselines' encoder: a batch's clauses in one packed pass
        self.word_encoder = AttentionClauseEncoder(c.embed_dim, c.word_hidden) if "lstm" in encoders else None
        clause_dim = sum(m.out_dim for m in (self.cnn, self.word_encoder) if m is not None)
        n_lex = 0
        if c.lexicon:
            # [V, F] 0/1 lexicon classes of each vocabulary word (ecpe.lexicon), saved with the weights
            n_lex = len(lexicon_classes(c.lexicon))
            feats = torch.zeros(len(vocab), n_lex) if lexicon_features is None else torch.as_tensor(lexicon_features)
            if feats.shape != (len(vocab), n_lex):
                raise ValueError(f"lexicon features of shape {tuple(feats.shape)}, expected {(len(vocab), n_lex)}")
            self.register_buffer("lexicon_features", feats.float())
        self.lstm = nn.LSTM(clause_dim + n_lex, c.hidden, batch_first=True, bidirectional=True)  # eq. 4
        self.emotion_vertex = nn.Linear(2 * c.hidden, c.vertex_dim)  # W_e, b_e (eq. 5)
        self.cause_vertex = nn.Linear(2 * c.hidden, c.vertex_dim)    # W_c, b_c (eq. 6)
        self.biaffine = Biaffine(c.vertex_dim)                       # W_m, b_m (eq. 7)
        # the variants' layers keep the names and the creation order (hence the initial weights) under which
        # the checkpoints were saved
        self.pair_extra = pair_scorer(c)                             # M from eq. 7's scores (variants)
        if c.use_aux:
            self.emotion_hidden = nn.Linear(2 * c.hidden, c.vertex_dim)  # eq. 11
            self.cause_hidden = nn.Linear(2 * c.hidden, c.vertex_dim)    # eq. 12
            self.emotion_out = nn.Linear(c.vertex_dim, 2)                # eq. 13
            self.cause_out = nn.Linear(c.vertex_dim, 2)                  # eq. 14
        self.context = clause_context(c)                             # after eq. 4 (variants)
        self.pair_objective = pair_objective(c)                      # eq. 15 (variants)

    # ---- data ------------------------------------------------------------------------------------
    def tensorize(self, docs: Sequence[Document]) -> DocTensors:
        """Tensors of a split, built once."""
        return DocTensors(docs, self.vocab, self.config.max_clause_len, max(self.config.kernel_sizes),
                          char_backoff=self.config.char_backoff)

    def chunk_tensors(self, docs: Sequence[Sequence[Sequence[str]]]) -> ChunkTensors:
        """Tensors of documents to predict (clauses of words), built with array operations only."""
        c = self.config
        return ChunkTensors(docs, self.vocab, c.max_clause_len, max(c.kernel_sizes), char_backoff=c.char_backoff)

    def embed_words(self, words: torch.Tensor, unknown_chars: torch.Tensor | None = None) -> torch.Tensor:
        """Word vectors of ``words`` [T], with word dropout while training.

        Without ``char_backoff`` a dropped word becomes ``<unk>``. With it, a dropped word, and an unknown
        word given an id past the vocabulary (see ``DocBatch.unknown_chars``), is the mean of the vectors
        of its characters that are vocabulary words; only words without such characters become ``<unk>``.
        """
        c, V = self.config, len(self.vocab)
        drop = None
        if self.training and c.word_dropout > 0:
            drop = torch.rand(words.shape, device=words.device) < self.unk_prob[words.clamp(max=V - 1)]
        if not c.char_backoff:
            return self.embed(words.masked_fill(drop, 1) if drop is not None else words)
        known = words < V
        rows = self.word_chars[words.clamp(max=V - 1)]                        # [T, K]
        if unknown_chars is not None and not bool(known.all()):
            extra = unknown_chars[(words - V).clamp(min=0)]                   # [T, K']
            width = max(rows.shape[1], extra.shape[1])
            rows = torch.where(known[:, None], F.pad(rows, (0, width - rows.shape[1])),
                               F.pad(extra, (0, width - extra.shape[1])))
        compose = ~known if drop is None else (~known | drop)
        composed = compose & (rows[:, 0] > 0)                                 # the others become <unk>
        x = self.embed(words.masked_fill(compose, 1).masked_fill(composed, 0))  # 0 (padding): replaced below
        where = composed.nonzero().squeeze(1)
        if len(where):
            r = rows[where]
            n = (r > 0).sum(1, keepdim=True).to(x.dtype)
            x = x.index_put_((where,), self.embed(r).sum(1) / n)             # padding rows are 0
        return x

    # ---- the model -------------------------------------------------------------------------------
    def cache_word_projections(self, enabled: bool = True) -> "E2EECPE":
        """At inference, read each word's clause-CNN products from a table made once per vocabulary.

        The convolutions of eq. 1 are linear in the word vectors, so every word type's contribution to
        every filter tap (``sum(kernel_sizes) * filters`` values, 700 with the paper's sizes) can be
        computed once; a clause is then encoded by gathering and adding those rows, with no matrix
        product. Same scores to float rounding. The table (``len(vocab)`` x 700 floats, 61 MB for NEWS
        fold 1) is built on first use and rebuilt when the embeddings or filters change; it is used only
        in ``eval()`` mode without gradients, so training is untouched. ``Extractor`` and ``ecpe evaluate``
        turn it on (:meth:`prepare_for_inference`, called by ``ecpe.inference.load_models``). Only the CNN
        has such a table: the LSTM clause encoder's vectors are not linear in the words (with
        ``cnn+lstm`` the table serves the CNN half).
        """
        self._cache_words = enabled and self.cnn is not None
        if not enabled:
            self._word_table = None
        return self

    def prepare_for_inference(self) -> "E2EECPE":
        """Word projections read from a table at inference (:meth:`cache_word_projections`)."""
        return self.cache_word_projections(True)

    @property
    def averageable(self) -> bool:
        """Ensembles average M-hat and the auxiliary heads' probabilities: only models with those heads."""
        return self.config.use_aux

    def word_table(self) -> torch.Tensor:
        """[len(vocab), sum(kernel_sizes) * filters]: the embeddings times the CNN's tap matrices, cached."""
        params = [self.embed.weight, *(conv.weight for conv in self.cnn.convs)]
        key = tuple((p.data_ptr(), tensor_version(p), p.device, p.dtype) for p in params)
        cached = self._word_table
        if cached is None or cached[0] != key:
            # float32 whatever the caller's autocast (bf16 inference): the cached table must not depend on
            # the precision of the first call that filled it
            with torch.no_grad(), torch.autocast(self.embed.weight.device.type, enabled=False):
                cached = (key, self.embed.weight @ self.cnn.projection().t())
            self._word_table = cached
        return cached[1]

    def encode(self, batch: DocBatch) -> torch.Tensor:
        """Contextual clause states h_i (eqs. 1-4): the clause BiLSTM over the clause vectors. Returns
        [B, D, 2 * hidden], 0 on padding."""
        return bilstm_padded(self.lstm, self.clause_grid(batch), batch.doc_lens)

    def clause_grid(self, batch: DocBatch) -> torch.Tensor:
        """Clause vectors (eqs. 1-3, with the lexicon features when enabled) laid out [B, D, F], 0 on padding."""
        cnn, word_encoder, cached = self.cnn, self.word_encoder, self._cache_words
        parts = []  # clause vectors of each encoder, side by side ("cnn+lstm": [CNN's; LSTM's])
        if cached and not self.training and not torch.is_grad_enabled():
            table, ids, unknown_rows = self.word_table(), batch.flat_words, None
            # char backoff: an unknown word made of known characters has an id V + j past the table
            unknown = ids >= len(table) if batch.unknown_chars is not None else None
            if unknown is not None and bool(unknown.any()):
                # rows only for the unknown words of this batch (renumbered V, V + 1, ...): the mean of their
                # characters' rows, as their vector is the mean of their characters' vectors
                present, inverse = torch.unique(ids[unknown], return_inverse=True)
                chars = batch.unknown_chars[present - len(table)]
                unknown_rows = table[chars].sum(1) / (chars > 0).sum(1, keepdim=True).clamp(min=1).to(table.dtype)
                ids = ids.masked_scatter(unknown, inverse + len(table))
            parts.append(self.cnn.forward_projected(table, ids, batch.clause_starts, batch.clause_lens,
                                                    unknown_rows))  # dropout: identity
        elif cnn is not None:
            x = self.embed_words(batch.flat_words, batch.unknown_chars)  # [T, d_e], clauses end to end
            if torch.is_autocast_enabled(x.device.type):
                # the CNN multiplies the words in the low precision: cast before the dropout, which then moves
                # half the bytes (the same values: its mask is 0 or 2, exact in any float format)
                x = x.to(torch.get_autocast_dtype(x.device.type))
            x = self.dropout(x)
            parts.append(self.dropout(cnn.forward_flat(x, batch.clause_starts, batch.clause_lens)))  # [N, |t| * d_c]
        if word_encoder is not None:  # (with both encoders, each draws its own word dropout)
            packed = pack_clauses(batch.words, batch.clause_lens).map(
                lambda ids: self.dropout(self.embed_words(ids, batch.unknown_chars)))
            parts.append(self.dropout(word_encoder(packed)))  # [N, 2 * word_hidden]
        clauses = parts[0] if len(parts) == 1 else torch.cat(parts, 1)
        if self.config.lexicon:
            clauses = torch.cat([clauses, self.clause_lexicon(batch.words)], 1)
        B, D = batch.batch_size, batch.max_doc_len
        return clauses.new_zeros(B * D, clauses.shape[1]).index_copy(0, batch.clause_pos, clauses).view(B, D, -1)

    def clause_lexicon(self, words: torch.Tensor) -> torch.Tensor:
        """[N, F]: for each clause ([N, L] word ids), which lexicon classes any of its words belongs to.
        Ids past the vocabulary (char backoff's unknown words) have none."""
        feats = self.lexicon_features
        V = feats.shape[0]
        rows = feats[words.clamp(max=V - 1)]
        if bool((words >= V).any()):
            rows = rows * (words < V).unsqueeze(-1).to(rows.dtype)
        return rows.amax(1) if rows.shape[1] else rows.new_zeros(rows.shape[0], feats.shape[1])

    def forward(self, batch: DocBatch) -> dict[str, torch.Tensor]:
        """Scores of a batch.

        Returns:
            ``pair_logits`` [B, D, D] M (eq. 7), rows = emotion clause p, columns = cause clause q;
            ``pair_weights`` [B, D, D] A (eq. 9, or 1 without the position matrix), 0 outside documents;
            ``emotion`` / ``cause`` [B, D, 2] log-probabilities of the auxiliary heads (when enabled).
        """
        scores = {}
        h = self.context.shared(self.encode(batch), batch.mask)                 # eqs. 1-4
        if self.config.use_aux:
            scores["emotion"] = head(self.emotion_hidden, self.emotion_out, h)  # eqs. 11, 13
        h_c = self.context.cause(h, batch.mask, scores.get("emotion"))         # what the cause side reads
        z_e = torch.relu(self.emotion_vertex(h))                                # eq. 5
        z_c = torch.relu(self.cause_vertex(h_c))                                # eq. 6
        scores["pair_logits"] = self.pair_extra(self.biaffine(z_e, z_c), h, h_c)  # eq. 7
        if self.config.use_position:
            scores["pair_weights"] = position_weights(batch.doc_lens, batch.max_doc_len, self.config.eps)  # eq. 9
        else:
            m = batch.mask.float()
            scores["pair_weights"] = m[:, :, None] * m[:, None, :]
        if self.config.use_aux:
            scores["cause"] = head(self.cause_hidden, self.cause_out, h_c)      # eqs. 12, 14
        return scores

    def loss(self, scores: dict[str, torch.Tensor], batch: DocBatch) -> torch.Tensor:
        """(L_pair + beta * L_aux) / N (eqs. 15-17; the L2 term is applied by the optimizer).

        As in the paper both terms are sums, over the real cells of the pair matrices and over the real
        clauses; dividing by the batch's N real clauses keeps their ratio and makes the step size
        independent of the batch. Padding enters neither.
        """
        m = batch.mask
        cells = m[:, :, None] & m[:, None, :]
        loss = self.pair_objective(scores["pair_logits"], scores["pair_weights"], batch.pairs, cells)  # eq. 15
        if self.config.use_aux:  # eq. 16
            emo, cau = scores["emotion"][m], scores["cause"][m]
            if batch.emotion_target is not None:  # soft targets (distillation)
                def nll(logp, t):
                    return -(t * logp[..., 1] + (1 - t) * logp[..., 0]).sum()

                aux = nll(emo, batch.emotion_target[m]) + nll(cau, batch.cause_target[m])
            else:
                aux = F.nll_loss(emo, batch.emotion[m], reduction="sum") + F.nll_loss(cau, batch.cause[m], reduction="sum")
            loss = loss + self.config.beta * aux                               # eq. 17
        return loss / m.sum()

    @torch.no_grad()
    def pair_probs(self, scores: dict[str, torch.Tensor]) -> torch.Tensor:
        """M-hat = sigmoid(M) * A (eqs. 8, 10), [B, D, D]."""
        return torch.sigmoid(scores["pair_logits"]) * scores["pair_weights"]

    @torch.no_grad()
    def decode(self, scores: dict[str, torch.Tensor], batch: DocBatch, threshold: float | None = None) -> Decoded:
        """Pairs where M-hat > eta (eq. 18); emotions and causes from the auxiliary heads (probability > 1/2),
        with ``clauses="heads+pairs"`` also the clauses of every predicted pair, and without heads the clauses
        that take part in a predicted pair."""
        eta = self.config.threshold if threshold is None else threshold
        probs = self.pair_probs(scores)                                   # [B, D, D]
        inside = batch.mask[:, :, None] & batch.mask[:, None, :]          # cells of real clause pairs only
        pairs = ((probs > eta) & inside).nonzero()                        # [K, 3], row-major: the one nonzero
        pair_scores = probs[pairs.unbind(1)]                              # [K], a gather (no second mask scan)
        if "emotion" in scores:
            emo, cau = scores["emotion"][..., 1].exp(), scores["cause"][..., 1].exp()  # [B, D]
            emotions, causes = (emo > 0.5) & batch.mask, (cau > 0.5) & batch.mask
            if self.config.clauses == "heads+pairs":
                add_pair_clauses(emotions, causes, pairs)
        else:
            emo = cau = None
            emotions, causes = torch.zeros_like(batch.mask), torch.zeros_like(batch.mask)
            emotions[pairs[:, 0], pairs[:, 1]] = True
            causes[pairs[:, 0], pairs[:, 2]] = True
        return Decoded(batch.doc_lens, pairs, pair_scores, emotions, causes, emo, cau, probs)

    def param_groups(self, l2: float) -> list[dict]:
        """Optimizer groups: lambda * ||theta||^2 (eq. 17) as weight decay 2 * lambda, except on the word
        embeddings, whose gradients are sparse (group flagged ``sparse``: the Trainer gives it a lazy Adam
        that updates only the rows a batch uses)."""
        emb = [p for p in self.embed.parameters() if p.requires_grad]
        rest = [p for n, p in self.named_parameters() if not n.startswith("embed.") and p.requires_grad]
        groups = [{"params": rest, "weight_decay": 2 * l2}]
        if emb:
            groups.append({"params": emb, "weight_decay": 0.0, "sparse": True})
        return groups
