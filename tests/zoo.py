"""Tiny classifiers of the architectures Bengali users bring, built from configs (random weights) with the
tokenizer kind each one ships with, trained on BEmoC's training texts: WordPiece (mBERT, BanglaBERT,
multilingual DistilBERT), Unigram (XLM-R, mDeBERTa-v3, IndicBERT/ALBERT) and byte-level BPE (RoBERTa)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Tuple

import torch
from transformers import (AlbertConfig, AlbertForSequenceClassification, BertConfig, BertForSequenceClassification,
                          DebertaV2Config, DebertaV2ForSequenceClassification, DistilBertConfig,
                          DistilBertForSequenceClassification, ElectraConfig, ElectraForSequenceClassification,
                          PreTrainedTokenizerFast, RobertaConfig, RobertaForSequenceClassification,
                          XLMRobertaConfig, XLMRobertaForSequenceClassification)

#: hidden size, layers, heads, FFN width of every tiny model (4 layers: the shortened recipes cut to 2)
DIMS = dict(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=64)


def unigram_tokenizer(texts: List[str], vocab_size: int = 1500) -> PreTrainedTokenizerFast:
    """An XLM-R style SentencePiece-Unigram tokenizer (``<s> ... </s>``) trained on ``texts``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    raw = Tokenizer(models.Unigram())
    raw.normalizer = normalizers.NFKC()
    raw.pre_tokenizer = pre_tokenizers.Metaspace()
    raw.train_from_iterator(texts, trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], unk_token="<unk>"))
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", raw.token_to_id("<s>")), ("</s>", raw.token_to_id("</s>"))])
    from tokenizers import decoders

    raw.decoder = decoders.Metaspace()
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", cls_token="<s>", sep_token="</s>", mask_token="<mask>",
                                   model_max_length=512)


def byte_bpe_tokenizer(texts: List[str], vocab_size: int = 1500) -> PreTrainedTokenizerFast:
    """RoBERTa's standard byte-level BPE tokenizer trained on ``texts``."""
    from tokenizers import ByteLevelBPETokenizer, processors

    raw = ByteLevelBPETokenizer()
    raw.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2,
                            special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    backend = raw._tokenizer
    backend.post_processor = processors.RobertaProcessing(("</s>", backend.token_to_id("</s>")),
                                                          ("<s>", backend.token_to_id("<s>")))
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>", cls_token="<s>", sep_token="</s>",
                                   mask_token="<mask>", model_max_length=512)


def _labels(names: List[str]) -> dict:
    return dict(num_labels=len(names), id2label=dict(enumerate(names)), label2id={n: i for i, n in enumerate(names)})


def _bert_like(config_cls, model_cls, **extra) -> Callable:
    def build(vocab: int, pad: int, names: List[str]):
        config = config_cls(vocab_size=vocab, pad_token_id=pad, max_position_embeddings=514, **DIMS, **extra,
                            **_labels(names))
        return model_cls(config)

    return build


def _distilbert(vocab: int, pad: int, names: List[str]):
    config = DistilBertConfig(vocab_size=vocab, pad_token_id=pad, dim=DIMS["hidden_size"],
                              n_layers=DIMS["num_hidden_layers"], n_heads=DIMS["num_attention_heads"],
                              hidden_dim=DIMS["intermediate_size"], **_labels(names))
    return DistilBertForSequenceClassification(config)


#: name -> (model builder, tokenizer kind); the seven architectures of the recipes' test matrix
ARCHITECTURES: Dict[str, Tuple[Callable, str]] = {
    "bert": (_bert_like(BertConfig, BertForSequenceClassification), "wordpiece"),
    "electra": (_bert_like(ElectraConfig, ElectraForSequenceClassification, embedding_size=32), "wordpiece"),
    "xlm-roberta": (_bert_like(XLMRobertaConfig, XLMRobertaForSequenceClassification), "unigram"),
    "deberta-v2": (_bert_like(DebertaV2Config, DebertaV2ForSequenceClassification, relative_attention=True,
                              position_buckets=16, pos_att_type=["p2c", "c2p"], share_att_key=True,
                              position_biased_input=False, max_relative_positions=-1), "unigram"),
    "deberta-v2-own-pos-proj": (_bert_like(DebertaV2Config, DebertaV2ForSequenceClassification,
                                           relative_attention=True, position_buckets=16, pos_att_type=["p2c", "c2p"],
                                           share_att_key=False, position_biased_input=False), "unigram"),
    "distilbert": (_distilbert, "wordpiece"),
    "albert": (_bert_like(AlbertConfig, AlbertForSequenceClassification, embedding_size=16), "unigram"),
    "roberta": (_bert_like(RobertaConfig, RobertaForSequenceClassification), "byte-bpe"),
}


def build_classifier(arch: str, texts: List[str], label_names: List[str], wordpiece, seed: int = 0):
    """``(model, tokenizer)``: a tiny random classifier of ``arch`` and its kind of tokenizer (``wordpiece``: the
    given saved WordPiece tokenizer; the others are trained on ``texts``)."""
    builder, kind = ARCHITECTURES[arch]
    tok = {"wordpiece": lambda: wordpiece, "unigram": lambda: unigram_tokenizer(texts),
           "byte-bpe": lambda: byte_bpe_tokenizer(texts)}[kind]()
    torch.manual_seed(seed)
    model = builder(len(tok), tok.pad_token_id, label_names).eval()
    model.config.architectures = [type(model).__name__]
    return model, tok


def save_classifier(arch: str, folder: Path, texts: List[str], label_names: List[str], wordpiece) -> Path:
    model, tok = build_classifier(arch, texts, label_names, wordpiece)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
