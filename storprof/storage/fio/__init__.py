"""fio: job files checked as fio reads them, where fio runs, and its JSON turned into numbers."""
