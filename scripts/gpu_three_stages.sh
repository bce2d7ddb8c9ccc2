#!/usr/bin/env bash
# ULMFiT's three stages on one GPU, inside a fixed time budget (about 8 minutes on an H200):
#   1. a general-domain causal LM, ULMFiT's AWD-LSTM size (3 x 1150, 400-wide tied embeddings), on the corpus of
#      scripts/build_general_corpus.py, for GENERAL_SECONDS: a short calibration run measures the steps per second,
#      and the real run plans its schedule (warm-up, cosine decay) for the steps that fit;
#   2. that LM continued on BBC News's unlabeled training documents, or DOMAIN_FILE's (discriminative rates, slanted
#      triangular), up to 10 epochs, as many as fit in DOMAIN_SECONDS at the calibrated rate;
#   3. the label-efficiency study on its fixed features (whole documents up to 1024 tokens, read in chunks), plain
#      and self-trained on the unlabeled pool, against TF-IDF + logistic regression, 5-100 and all labels per class;
#   4. with FINETUNE_SECONDS > 0, the study that fine-tunes the network (BPT3C) against the same network from
#      scratch, reported with the runs that finished in time. It does not fit in minutes: on an H200 one fine-tuning
#      run of this 32M-parameter network takes tens of seconds to minutes, and processes side by side only
#      time-slice the GPU.
# Each stage has its own time limit, so a slow machine loses the last study runs, never the results so far. Usage:
#   data/general.jsonl present (python scripts/build_general_corpus.py), then: bash scripts/gpu_three_stages.sh
# Environment: PY; RUNS (models, default runs/gpu); REPORT (tables, default $RUNS/report; make three-stages-gpu:
# docs/results/three_stages_gpu); GENERAL_FILE; DOMAIN_FILE, the labeled documents of the target task (any file
# --train_file reads; default: BBC News) and DOMAIN_NAME, the domain LM's name ($RUNS/${DOMAIN_NAME}_lm, default
# bbc); each stage's seconds: GENERAL_SECONDS, DOMAIN_SECONDS, STUDY_SECONDS (0: no fixed-features study),
# FINETUNE_SECONDS (0: no fine-tuning study); FEATURES_ARGS and FINETUNE_ARGS, more label_efficiency.py flags for
# each study, which win over the script's (e.g. "--num_labels_list 10 100 --with_tfidf cv --linear_model cv";
# "--num_labels_list 10 5 --per_device_train_batch_size 32": fewer runs in larger batches, for a GPU); SELF_TRAINING
# set empty: the fixed-features study without self-training, which encodes the whole unlabeled pool. Sentiment:
#   DOMAIN_FILE=data/imdb.jsonl DOMAIN_NAME=imdb GENERAL_SECONDS=120 DOMAIN_SECONDS=150 SELF_TRAINING=
#   FEATURES_ARGS="--num_labels_list 10 100 --seeds 0 1 2 3 4 5 6 7 8 9 --with_tfidf cv --linear_model cv"
#   bash scripts/gpu_three_stages.sh
# SMOKE=1 runs the same stages with tiny sizes (a CPU check of the script, its numbers mean nothing).
set -u
PY=${PY:-python}
RUNS=${RUNS:-runs/gpu}
REPORT=${REPORT:-$RUNS/report}
GENERAL_FILE=${GENERAL_FILE:-data/general.jsonl}
GENERAL_SECONDS=${GENERAL_SECONDS:-170}
DOMAIN_SECONDS=${DOMAIN_SECONDS:-50}
STUDY_SECONDS=${STUDY_SECONDS:-180}
FINETUNE_SECONDS=${FINETUNE_SECONDS:-0}
FINETUNE_ARGS=${FINETUNE_ARGS:-}
FEATURES_ARGS=${FEATURES_ARGS:-}
SELF_TRAINING=${SELF_TRAINING---self_training}
DOMAIN_FILE=${DOMAIN_FILE:-}
DOMAIN_NAME=${DOMAIN_NAME:-bbc}
DOMAIN_LM="$RUNS/${DOMAIN_NAME}_lm"
DATA=${DOMAIN_FILE:+--train_file $DOMAIN_FILE}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
mkdir -p "$RUNS" "$REPORT"
if [ "${SMOKE:-0}" = 1 ]; then
    MODEL="--embedding_size 32 --hidden_size 48 --num_layers 3"
    GENERAL_DATA="--max_train_samples 60" CALIBRATION_STEPS=6 GENERAL_BATCH=8 DOMAIN="--max_train_steps 6"
    GUARD=5  # a busy CPU (tests on a shared machine) must not cut the planned steps short
    STUDY="--num_labels_list 2 --max_seq_length 64 --classifier_bptt 32 --classifier_grad_length 32 \
--num_train_epochs 1 --seeds 0" FEATURES="--num_labels_list 2 --max_seq_length 64 --seeds 0"
else
    MODEL="--embedding_size 400 --hidden_size 1150 --num_layers 3"
    GENERAL_DATA="" CALIBRATION_STEPS=150 GENERAL_BATCH=128 DOMAIN="" GUARD=1.3
    STUDY="--num_labels_list 10 5 100 25 50 all --max_seq_length 1024 --classifier_bptt 128 \
--classifier_grad_length 384" FEATURES="--max_seq_length 1024 --classifier_bptt 128"
fi
# fastai's AWD-LSTM dropouts (embedding 0.02, input 0.25, hidden 0.15, weights 0.2, output 0.1) halved.
GENERAL="--objective clm --train_file $GENERAL_FILE --test_size 0.02 --validation_size 0.02 --seed 0 \
--block_size 128 --per_device_train_batch_size $GENERAL_BATCH --learning_rate 2e-3 --num_warmup_steps 100 \
--no_eval_each_epoch --embedding_dropout 0.01 --input_dropout 0.125 --hidden_dropout 0.075 \
--weight_dropout 0.1 --output_dropout 0.05 $MODEL $GENERAL_DATA"
stamp() { echo "== $(date -u +%T) $*"; }

stamp "calibration: $CALIBRATION_STEPS steps"
$PY scripts/pretrain.py $GENERAL --output_dir "$RUNS/calibration" --max_train_steps "$CALIBRATION_STEPS" \
    || exit 1
rate=$($PY -c "import json,sys; r=json.load(open(sys.argv[1])); print(r['steps'] / r['train_seconds'])" \
    "$RUNS/calibration/results.json") || exit 1
steps=$($PY -c "print(max(1, int($rate * $GENERAL_SECONDS)))")
# the domain's training documents (70% of them: the rest are held out) in blocks of 128 tokens, GENERAL_BATCH a step
# (BBC News: about 1M training tokens, 60 steps an epoch)
domain_steps=$($PY -c "
import sys
from transformers import AutoTokenizer
from rnn_hf.data.text import load_text_dataset
texts = list(load_text_dataset(train_file=sys.argv[1] or None)['train']['text'])
tokens = sum(map(len, AutoTokenizer.from_pretrained(sys.argv[2])(texts)['input_ids']))
print(max(1, round(0.7 * tokens / (128 * $GENERAL_BATCH))))" "$DOMAIN_FILE" "$RUNS/calibration") || exit 1
domain_epochs=$($PY -c "print(max(1, min(10, int($rate * $DOMAIN_SECONDS / $domain_steps))))")
minutes=$($PY -c "print($GENERAL_SECONDS * $GUARD / 60)")  # a guard: the planned steps should end first
stamp "general LM: $steps steps planned for ${GENERAL_SECONDS}s"
$PY scripts/pretrain.py $GENERAL --tokenizer_name "$RUNS/calibration" --output_dir "$RUNS/general_lm" \
    --max_train_steps "$steps" --max_train_minutes "$minutes" || exit 1

stamp "domain LM: $domain_epochs epochs of ${DOMAIN_FILE:-BBC News}'s unlabeled training documents" \
    "($domain_steps steps each)"
# shellcheck disable=SC2086
$PY scripts/pretrain.py --objective clm $DATA --model_name_or_path "$RUNS/general_lm" --output_dir "$DOMAIN_LM" \
    --seed 0 --per_device_train_batch_size "$GENERAL_BATCH" --learning_rate 2e-3 --discriminative_lr_decay 2.6 \
    --lr_scheduler_type slanted_triangular --no_eval_each_epoch --num_train_epochs "$domain_epochs" $DOMAIN || exit 1

cp "$RUNS/general_lm/README.md" "$REPORT/general_lm.md"; cp "$DOMAIN_LM/README.md" "$REPORT/${DOMAIN_NAME}_lm.md"

# study SECONDS FLAGS...: label_efficiency.py on the domain LM for at most SECONDS; cut short (or failed), it still
# writes the report of the runs recorded so far, never leaving one from an earlier run
study() {
    local seconds=$1
    shift
    # shellcheck disable=SC2086
    timeout "$seconds" $PY scripts/label_efficiency.py --clm_checkpoint "$DOMAIN_LM" $DATA "$@" \
        || $PY scripts/label_efficiency.py --clm_checkpoint "$DOMAIN_LM" $DATA "$@" --report_only
}

if [ "$STUDY_SECONDS" -gt 0 ]; then
    stamp "fixed-features study${SELF_TRAINING:+ (self-trained too)}"
    # shellcheck disable=SC2086
    study "$STUDY_SECONDS" --features only $SELF_TRAINING $FEATURES $FEATURES_ARGS --work_dir "$RUNS/le_features" \
        --output_dir "$REPORT/fixed_features"
fi

if [ "$FINETUNE_SECONDS" -gt 0 ]; then
    stamp "fine-tuning study, for ${FINETUNE_SECONDS}s"
    # shellcheck disable=SC2086
    study "$FINETUNE_SECONDS" $STUDY $FINETUNE_ARGS --work_dir "$RUNS/le_finetuned" --output_dir "$REPORT/finetuned"
fi
stamp done
