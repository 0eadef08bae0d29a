"""The rule engine: pure Python, no database, web framework or event loop.

Plain data in (customer facts, rules, current ownership, territory members and their load), a
decision and its trace out. `tests/unit/test_engine_purity.py` keeps it that way.
"""
