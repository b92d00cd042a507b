"""Reporting: tables, figures, statistics and the written report, from records only."""
