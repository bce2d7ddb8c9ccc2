"""Model cards: fill the packaged `templates/model_card.md` with a run's config, data, budget and metrics."""

import datetime
import os
import platform
import sys
from importlib.resources import files
from pathlib import Path

import torch
from huggingface_hub import ModelCard, ModelCardData

# Package data, read through importlib.resources: found wherever rnn_hf is installed (wheel, editable, zip).
TEMPLATE = files("rnn_hf") / "templates" / "model_card.md"

CONFIG_KEYS = (
    "cell_type", "vocab_size", "embedding_size", "hidden_size", "num_layers", "bidirectional",
    "tie_word_embeddings", "embedding_dropout", "input_dropout", "hidden_dropout", "weight_dropout",
    "output_dropout", "classifier_pooling", "num_labels",
    # RnnSeq2SeqConfig
    "target_vocab_size", "encoder_bidirectional", "decoder_embedding_size", "decoder_hidden_size",
    "decoder_num_layers", "attention_type", "input_feeding", "bridge", "share_embeddings", "dropout", "lm_loss_weight",
)  # fmt: skip

USAGE = {
    "causal-lm": """from transformers import AutoModelForCausalLM, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("{path}")
model = AutoModelForCausalLM.from_pretrained("{path}", trust_remote_code=True)
ids = tokenizer("The economy", return_tensors="pt").input_ids
print(tokenizer.decode(model.generate(ids, max_new_tokens=30, do_sample=True, top_k=40)[0]))""",
    "masked-lm": """from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline
model = AutoModelForMaskedLM.from_pretrained("{path}", trust_remote_code=True)
fill = pipeline("fill-mask", model=model, tokenizer=AutoTokenizer.from_pretrained("{path}"))
print(fill("The government said the <mask> would rise."))""",
    "text-classification": """from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline
model = AutoModelForSequenceClassification.from_pretrained("{path}", trust_remote_code=True)
classify = pipeline("text-classification", model=model, tokenizer=AutoTokenizer.from_pretrained("{path}"))
print(classify("Shares rose after the bank reported higher profits."))""",
    "text-regression": """import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("{path}")
model = AutoModelForSequenceClassification.from_pretrained("{path}", trust_remote_code=True).eval()
with torch.no_grad():
    print(model(**tokenizer("A document to score.", return_tensors="pt")).logits.item())""",
    "token-classification": """from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline
model = AutoModelForTokenClassification.from_pretrained("{path}", trust_remote_code=True)
tag = pipeline("token-classification", model=model, tokenizer=AutoTokenizer.from_pretrained("{path}"))
print(tag("The Prime Minister visited London on Monday."))""",
    "document-encoder": """from transformers import AutoModelForSequenceClassification, AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained("{path}")
# its head predicts a document's words; fine-tune it as a classifier with a new head (or: finetune.py, whose
# label-efficiency study also reads its pooled states as fixed features)
model = AutoModelForSequenceClassification.from_pretrained("{path}", num_labels=2, ignore_mismatched_sizes=True,
                                                           trust_remote_code=True)""",
    "seq2seq": """from pathlib import Path
import rnn_hf  # registers the "seq2seq-generation" pipeline (transformers 5 removed text2text-generation)
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, pipeline
model = AutoModelForSeq2SeqLM.from_pretrained("{path}")
tokenizer = AutoTokenizer.from_pretrained("{path}")  # the source side; the target side's, when it has its own:
target = Path("{path}") / "target_tokenizer"
target_tokenizer = AutoTokenizer.from_pretrained(target) if target.is_dir() else tokenizer
generate = pipeline("seq2seq-generation", model=model, tokenizer=tokenizer, target_tokenizer=target_tokenizer)
print(generate("In the beginning God created the heaven and the earth.", num_beams=4, max_new_tokens=60))""",
}
ARCHITECTURES = {
    "causal-lm": "causal language model",
    "masked-lm": "bidirectional masked language model",
    "text-classification": "sequence classifier",
    "text-regression": "sequence regressor",
    "token-classification": "token classifier",
    "seq2seq": "encoder-decoder",
    "document-encoder": "document encoder",
}
PIPELINE_TAGS = {
    "causal-lm": "text-generation",
    "masked-lm": "fill-mask",
    "text-classification": "text-classification",
    "text-regression": "text-classification",  # the Hub has no regression tag: a one-output text classifier
    "token-classification": "token-classification",
    "seq2seq": "text2text-generation",
    "document-encoder": "feature-extraction",
}


def hardware() -> str:
    """The device, and on a CPU its cores and the threads torch computes on (a study's times depend on both)."""
    threads = torch.get_num_threads()
    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU, {os.cpu_count()} cores, torch on {threads} thread{'s' if threads != 1 else ''}"
    )
    return f"{device}; Python {sys.version.split()[0]}, torch {torch.__version__}, {platform.system()}"


def write_model_card(
    output_dir: str | Path,
    task: str,
    model,
    data_description: str,
    training: dict,
    metrics: dict,
    command: str,
    summary: str = "",
    datasets: list[str] | None = None,
    limitations: str = "A small recurrent model trained on a small corpus: expect topical, often ungrammatical text.",
) -> Path:
    """Write `README.md` (the model card) into `output_dir` and return its path. `task` is a key of `USAGE`."""
    config = model.config
    card_data = ModelCardData(
        library_name="transformers",
        pipeline_tag=PIPELINE_TAGS[task],
        tags=["rnn_hf", config.cell_type, "recurrent"],
        datasets=datasets,
        license="apache-2.0",
    )
    card = ModelCard.from_template(
        card_data,
        template_str=TEMPLATE.read_text(encoding="utf-8"),
        model_name=Path(output_dir).resolve().name,
        summary=summary,
        architecture=ARCHITECTURES[task],
        cell_type=config.cell_type,
        config_rows=[(key, getattr(config, key)) for key in CONFIG_KEYS if hasattr(config, key)],
        num_parameters=f"{sum(p.numel() for p in model.parameters()):,}",
        data_description=data_description,
        training_rows=list(training.items()),
        metric_rows=[
            (key, f"{value:.4f}" if isinstance(value, float) else value) for key, value in metrics.items()
        ],
        command=command,
        date=datetime.date.today().isoformat(),
        hardware=hardware(),
        usage=USAGE[task].format(path=Path(output_dir).resolve()),
        limitations=limitations,
    )
    path = Path(output_dir) / "README.md"
    card.save(path)
    return path
