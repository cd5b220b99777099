"""The main job, ``chainsense run``: wires world, fleet, ledger and report; owns no protocol.

``options`` (what was asked, validated), ``fleet`` (baseline, saved or quickly trained),
``ledger_phase`` (records on chain, read back, verified, tamper check), ``summary`` (result,
table, JSON, chart), ``report`` (the HTML report), ``run`` (:func:`run_job`, the phases in order).
"""
