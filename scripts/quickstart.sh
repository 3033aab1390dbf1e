#!/usr/bin/env bash
# The main job on a fresh machine: set up, build the offline encoder, train KnowFREE on Weibo K = 250,
# evaluate on test, print the report, and show the saved model predicting through remote code.
# `bash scripts/quickstart.sh --fusion` first adds extension labels from the offline annotator (jieba)
# and trains on that fusion dataset instead. Other arguments go to train.py.
set -euo pipefail
cd "$(dirname "$0")/.."

FUSION=0
if [ "${1:-}" = "--fusion" ]; then
    FUSION=1
    shift
fi

python3 -m venv .venv
. .venv/bin/activate
pip install --quiet --upgrade pip
pip install --quiet -e ".[train,augment]"

knowfree-build-encoder --output-dir encoders/multilingual-e5-small --sentence-transformers-dir encoders/multilingual-e5-small-st

if [ "$FUSION" = 1 ]; then
    knowfree-augment extend --data examples/weibo --k 250 --output_dir outputs/weibo-250-fusion
    DATA=(--data outputs/weibo-250-fusion --train_split fusion)
    OUTPUT=${OUTPUT:-outputs/quickstart-fusion-weibo-250}
else
    DATA=(--data examples/weibo --k 250)
    OUTPUT=${OUTPUT:-outputs/quickstart-weibo-250}
fi
# accelerate launch sets OMP_NUM_THREADS=1 unless told otherwise: give the one process every core.
# The budget is 12 epochs (384 optimizer steps on Weibo K = 250), not minutes: the same command gives
# the same model on any machine of one CPU kind, only sooner or later.
accelerate launch --num_processes 1 --num_machines 1 --mixed_precision no --dynamo_backend no \
    --num_cpu_threads_per_process "$(nproc)" train.py \
    "${DATA[@]}" --task ner \
    --encoder encoders/multilingual-e5-small --freeze_embeddings \
    --epochs "${EPOCHS:-12}" --patience 4 \
    --output_dir "$OUTPUT" "$@"

python - "$OUTPUT" <<'PY'
import json, sys
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
text = "我们在北京的清华大学见到了李明老师。"
print("predict:", json.dumps(model.predict(text), ensure_ascii=False))
results = json.load(open(f"{sys.argv[1]}/results.json"))
print(f"quickstart test F1 = {results['test']['f1']:.4f} (model saved in {sys.argv[1]})")
PY
