"""The reliability suite (docs/bridge/reliability.md): a real ``tillwire run`` child, real brokers behind the fault
proxy, a consumer with the de-duplication ledger, and one accounting line per scenario."""
