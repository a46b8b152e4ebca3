"""The submissions watchdog: who owes what, and telling them once, in one message, until it arrives.

- ``calendar``: working days and the expected submissions with their due dates;
- ``missing``: the manifest of files received, the missing list and the files to send back;
- ``warnings``: early warnings of yearly targets at risk;
- ``recipients``: who hears about what, on which channel;
- ``messages``: what each recipient is told this run, rendered from the templates in ``templates/``;
- ``channels``: e-mail, DingTalk group robot and webhook delivery;
- ``store``: the watchdog's tables and its alerts log;
- ``tasks``: what the ``yuhang_watchdog`` DAG's tasks call.
"""
