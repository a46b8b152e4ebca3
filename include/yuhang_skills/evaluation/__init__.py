"""The performance evaluation: indicator points, score, grade, release of the performance
tranche, rectification and recoveries, what the net release leaves for the tranche year's build
plan, excellent stations and the gap to full release, computed exactly (Decimal, integer fen)
from the indicator tables.

The frame is 财预〔2020〕10号's 100 points; which indicators, their weights and targets, the
grade bands, the release rule (banded, linear or DLI tranches), the rectification deadline, the
recovery rule, the plan priority rule and the excellent-station rule all come from the policy
file. An indicator scores its full weight when the actual reaches the target and
weight x actual / target otherwise; points are rounded half-up to 0.01 and the score is the sum
of the points shown. Every money amount is rounded half-up to the fen once, where it is paid.

Modules, by job: ``score`` (the Evaluator, indicator points, site-year targets), ``release`` (the
release rule and DLI tranches), ``recovery`` (rectification records and recoveries), ``plan``
(the tranche year's build plan, the gap to full release, release margins) and ``outputs`` (the
evaluation as a whole, its fingerprint and headline, and writing it as a run); ``rectification``
reads the evaluators' decisions, ``runs`` keeps the runs and their sign-offs, ``reporting``,
``report_html`` and ``report_docx`` render them.
"""
