"""Reads of learner-behaviour data.

- `activity`: rollup aggregates behind the dashboard pages (per day, week, type, run).
- `learner_table`: the course page's at-risk table and the data version its cache keys on.
- `learners`: one learner's rows (learner page) and the data subject's export.
"""
