"""Browser tests of the dashboards (Playwright on Debian chromium) and their shared data builder."""
