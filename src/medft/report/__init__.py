"""From runs to answers: tables and figures like the paper's, the statistics it lacked, and
the artefacts of one report (``medft.report.artefacts``)."""
