import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
torch.set_num_threads(min(2, torch.get_num_threads()))

SPECIALS = ["<pad>", "<s>", "</s>", "<mask>", "<unk>"]


@pytest.fixture(scope="session")
def word_tokenizer():
    """A real `PreTrainedTokenizerFast` over 99 ids: the 5 special tokens then the words w5 .. w98."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate(SPECIALS)}
    vocab.update({f"w{i}": i for i in range(len(SPECIALS), 99)})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        mask_token="<mask>",
        unk_token="<unk>",
    )


def make_tiny_checkpoint(directory):
    """A tiny causal LM with a 500-token BPE tokenizer and split.json, as scripts/pretrain.py saves one: pretrained
    on 300 BBC train documents of the default split (those digests go into split.json)."""
    from rnn_hf import RnnConfig, RnnForCausalLM
    from rnn_hf.data import DEFAULT_SPLIT, DocumentSplit, load_bbc_news, split_by_document, train_tokenizer

    if (directory / "model.safetensors").is_file():  # built once per session, shared by the test modules
        return directory
    torch.manual_seed(1234)  # not the fine-tuning seed: a scratch model must not start from these weights
    pretrained_on = split_by_document(load_bbc_news(), **DEFAULT_SPLIT)["train"].select(range(300))["text"]
    tokenizer = train_tokenizer(pretrained_on, vocab_size=500)
    config = RnnConfig(vocab_size=len(tokenizer), embedding_size=16, hidden_size=32, num_layers=2)
    RnnForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    DocumentSplit.from_documents(pretrained_on, source="BBC News", **DEFAULT_SPLIT).save(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.getbasetemp() / "tiny_rnn_lm")


@pytest.fixture
def one_thread():
    """Tiny models gain nothing from a second thread, and lose a lot when another process holds the other core."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
