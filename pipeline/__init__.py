"""Revisiting few-sample BERT fine-tuning: a reproducible pipeline.

Library face (import the submodules; nothing heavy is imported here):
  pipeline.data.load_glue(task, split, glue_dir=None)
  pipeline.optim.AdamW(params, lr, betas, eps, weight_decay, bias_correction=True)
  pipeline.reinit.reinit_top_layers(model, n_layers, reinit_pooler=True, generator=None)
  pipeline.drift.layer_drift(initial_state_dict, model)
"""
__version__ = "0.1.0"
