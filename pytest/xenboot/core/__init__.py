"""The ground every layer stands on: errors and exit statuses, paths, checked inputs, external programs, jobs, the run record, console text as a terminal shows it, the terminal."""
