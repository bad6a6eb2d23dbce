"""The model lifecycle in one home: the model record and its codec (`records`), the models
topic as a service reads it (`feed`), the champion and challenger lanes a service runs
(`lanes`), the rule that promotes a challenger (`promotion`) and the model commands' core
that publishes, promotes and retires (`publishing`).

The forecaster's side of it, which writes its outputs and counts its metrics, stays with the
service: `consumer.model_roles` (the lanes applied between batches) and `consumer.following`
(the feed polled beside the loop).
"""
