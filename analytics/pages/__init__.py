"""Page builders of the behaviour dashboards: selectors in, template context and chart JSON out.

One module per page (`overview`, `course`, `learner`, `segments`, `quality`),
each building the whole context of its page from already authorised objects
(see eduplatform.core.access), so views stay thin. `panels` is the slot
registry through which other apps fill parts of the pages; `features` the
learner features behind segments and data quality; `common` what several
pages share. Chart cards and their data tables: eduplatform.core.charts.
"""
