"""The churn model, Django-free: features from frames, network, base-rate prior,
training, serving object, explanations, evaluation and compression adapter.

| module | what |
| --- | --- |
| `features.py` | as-of-cut-off features and labels from `LearningData` frames |
| `net.py` | `ChurnNet` (MLP, optional GRU), seed ensemble, per-cut-off router |
| `prior.py` | `RunPrior`: a module's churn rate at a cut-off, a fixed logit offset |
| `training.py` | `ChurnSettings`, `train_churn_model` (early stopping, Platt, bands) |
| `predictor.py` | `ChurnPredictor`: the serving object (`predict`, `explain`, state) |
| `explain.py` | plain-words descriptions of attributions |
| `evaluate.py` | offline evaluation against the peers |
| `compression.py` | the compression adapter and the offline compression report |
"""
