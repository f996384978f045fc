"""Stand-ins of the paper's published files, for the tests and the offline demo (not users' data).

:mod:`~mrvi_repro.testing.standins` writes small files in the published formats and schemas, with
planted structure and its truth beside them.
"""
