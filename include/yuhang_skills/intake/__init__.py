"""Intake: a site's file from the inbox to staging or quarantine, one module per stage.

- ``discover``: the files under the inbox, their site, period and kind, or why their place is wrong;
  the files a run does not process; the site batches of the mapped tasks.
- ``archive``: a content-addressed copy of every file before anything reads it; when it counts as received.
- ``parse``: reading a CSV or Excel file into text cells, or the reason it cannot be read.
- ``identity``: ID numbers and names: checks, derived birth date, sex and age, keyed hashes, masks.
- ``prepare``: a kind's rows cleaned into the columns its suite checks and staging keeps.
- ``validate``: the Great Expectations suites and the parameters they are run with.
- ``quarantine``: the rows refused, each with its value (masked) and reason.
- ``ingest``: the ``Intake`` that takes each file through these stages into the warehouse.
- ``publish``: versions, the current one per site, period and kind, and the reconciliation of rows.
- ``data_docs``: the validation pages for people.
"""
