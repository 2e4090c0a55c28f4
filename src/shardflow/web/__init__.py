"""The approvals inbox in the browser (``shardflow tasks serve``, the optional ``shardflow[web]``).

A Litestar app over the runs' human-task stores: a JSON API (``api.py``) backed by
:class:`~shardflow.web.inbox.Inbox` (the rules, no HTTP), the access token and host checks
(``guard.py``), resuming runs through ``shardflow resume`` subprocesses (``resumer.py``) and a
page of plain static files (``static/``) that needs no build step.
"""
