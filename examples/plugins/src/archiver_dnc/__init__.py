"""Example stage plugins for archiver: ``dnc_list`` (a filter) and ``events_file`` (a sink)."""
