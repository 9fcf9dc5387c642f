"""Telling people about alerts (issue 18): the operators' channels (a Discord webhook,
e-mail) and the store owner's DM, sent by the reconciler process.

`fleet.alerting` raises and resolves alerts (rows); `dispatch` sends what the rows owe,
grouped per kind and rate-limited; `seller` records and DMs the store owner's notices;
`checks` raises and resolves the alerts whose facts only a periodic look can see (disk,
backups, withdrawals past the SLA, nodes, instances back online). `service` runs them.
"""
