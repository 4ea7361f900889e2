"""The pure domain: what a canonical event means for a customer's engagement and loyalty.

The fold (`fold`, `campaign_fold`) and its state (`state`), the score, the actions the fold asks
for, duplicate detection (`dedup`), the event as the fold reads it (`events`) and the batch core
(`batch`). Nothing here does I/O, reads a clock or the environment, or imports a runtime: the
Faust worker, the embedded runner, the effector and the replays (`streams`, `tajo_events`) sit
around it and import it, never the reverse (the import contracts of `make lint` hold it so).
"""
